#!/bin/sh
# Writes the King James Bible as plain text, one verse a line without its reference, for
# examples/charlm (about 4.1 MB of ASCII). Needs Debian's bible-kjv package (tools/deps.sh demo):
# its data file (/usr/lib/bible.data) is compressed in the package's own format, so the text
# comes from the `bible` program, whose lines start with a reference such as "Ge1:1 " or
# "1Co13:4 " that is stripped here.
#   tools/kjv_text.sh [OUT]     (default: kjv.txt)
set -eu
out="${1:-kjv.txt}"
if ! command -v bible >/dev/null 2>&1; then
    echo "kjv_text.sh: the 'bible' program is missing: apt-get install bible-kjv (or tools/deps.sh demo)" >&2
    exit 1
fi
bible -f "Gen1:1-Rev22:21" | sed 's/^[0-9A-Za-z]*[0-9]*:[0-9]* //' > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
