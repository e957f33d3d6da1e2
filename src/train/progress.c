#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.1

/* A CSV field: quoted (with doubled quotes) when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *prefix, const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        fprintf(f, "%s%s", prefix, text);
        return;
    }
    fprintf(f, "\"%s", prefix);
    for (; *text; text++)
        fprintf(f, *text == '"' ? "\"\"" : "%c", *text);
    fputc('"', f);
}

dg_status dg__progress_open(struct dg__progress *p, const dg_fit_config *cfg, int64_t total)
{
    p->cfg = cfg;
    p->out = cfg->log ? cfg->log : stdout;
    p->live = cfg->verbose > 0 && isatty(fileno(p->out));
    p->total = total;
    p->epoch = 0;
    p->csv = NULL;
    if (cfg->csv_path == NULL)
        return DG_OK;
    p->csv = fopen(cfg->csv_path, "w");
    if (p->csv == NULL)
        return DG_ERR_IO;
    const char *metric = cfg->metric_name ? cfg->metric_name : "metric";
    fputs("epoch,loss,accuracy,", p->csv);
    csv_field(p->csv, "", metric);
    fputs(",val_loss,val_accuracy,", p->csv);
    csv_field(p->csv, "val_", metric);
    fputs(",seconds,samples_per_s\n", p->csv);
    return DG_OK;
}

void dg__progress_epoch_start(struct dg__progress *p, int epoch)
{
    p->epoch = epoch;
    p->last_draw = -1.0;
}

void dg__progress_batch(struct dg__progress *p, int64_t seen, double loss, double accuracy,
                        double elapsed)
{
    if (!p->live || (elapsed - p->last_draw < REDRAW_SECONDS && seen < p->total))
        return;
    p->last_draw = elapsed;
    int filled = (int)((double)BAR_WIDTH * (double)seen / (double)p->total);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[BAR_WIDTH] = '\0';
    double rate = elapsed > 0 ? (double)seen / elapsed : 0;
    double eta = rate > 0 ? (double)(p->total - seen) / rate : 0;
    fprintf(p->out, "\r\033[Kepoch %d/%d [%s] %lld/%lld loss %.4f", p->epoch, p->cfg->epochs,
            bar, (long long)seen, (long long)p->total, loss);
    if (!isnan(accuracy))
        fprintf(p->out, " acc %.4f", accuracy);
    fprintf(p->out, " %.0f samples/s ETA %.0fs", rate, eta);
    fflush(p->out);
}

static void print_value(FILE *out, const char *name, double value)
{
    if (!isnan(value))
        fprintf(out, " %s %.4f", name, value);
}

void dg__progress_epoch_end(struct dg__progress *p, const dg_epoch_stats *s)
{
    if (p->cfg->verbose > 0) {
        fprintf(p->out, "%sepoch %d/%d", p->live ? "\r\033[K" : "", s->epoch, p->cfg->epochs);
        print_value(p->out, "loss", s->loss);
        print_value(p->out, "acc", s->accuracy);
        print_value(p->out, p->cfg->metric_name ? p->cfg->metric_name : "metric", s->metric);
        print_value(p->out, "val_loss", s->val_loss);
        print_value(p->out, "val_acc", s->val_accuracy);
        if (!isnan(s->val_metric))
            fprintf(p->out, " val_%s %.4f",
                    p->cfg->metric_name ? p->cfg->metric_name : "metric", s->val_metric);
        fprintf(p->out, " %.0f samples/s %.1fs\n", s->samples_per_s, s->seconds);
        fflush(p->out);
    }
    if (p->csv != NULL) {
        fprintf(p->csv, "%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%.1f\n", s->epoch, s->loss,
                s->accuracy, s->metric, s->val_loss, s->val_accuracy, s->val_metric,
                s->seconds, s->samples_per_s);
        fflush(p->csv);
    }
}

dg_status dg__progress_close(struct dg__progress *p)
{
    if (p->csv == NULL)
        return DG_OK;
    bool failed = ferror(p->csv) != 0;
    failed = fclose(p->csv) != 0 || failed;
    p->csv = NULL;
    return failed ? DG_ERR_IO : DG_OK;
}
