#include "progress.h"
#include "alloc.h"

#include <errno.h>
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

static const char *metric_name(const struct dg__progress *p)
{
    return p->cfg->metric_name ? p->cfg->metric_name : "metric";
}

dg_status dg__progress_open(struct dg__progress *p, const dg_fit_config *cfg, int64_t total,
                            double base_lr)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    p->out = cfg->log ? cfg->log : stdout;
    p->live = cfg->verbose > 0 && isatty(fileno(p->out));
    p->total = total;
    p->base_lr = base_lr;
    if (cfg->plot_path != NULL && cfg->epochs > 0) {
        p->history = dg__calloc((size_t)cfg->epochs, sizeof *p->history);
        if (p->history == NULL) {
            snprintf(p->error, sizeof p->error, "out of memory for the plot's history");
            return DG_ERR_NOMEM;
        }
    }
    if (cfg->csv_path == NULL)
        return DG_OK;
    p->csv = fopen(cfg->csv_path, "w");
    if (p->csv == NULL) {
        snprintf(p->error, sizeof p->error, "cannot write the CSV file '%s': %s", cfg->csv_path,
                 strerror(errno));
        return DG_ERR_IO;
    }
    fputs("epoch,loss,accuracy,", p->csv);
    csv_field(p->csv, "", metric_name(p));
    fputs(",val_loss,val_accuracy,", p->csv);
    csv_field(p->csv, "val_", metric_name(p));
    fputs(",seconds,samples_per_s,lr\n", p->csv);
    return DG_OK;
}

void dg__progress_epoch_start(struct dg__progress *p, int epoch)
{
    p->epoch = epoch;
    p->last_draw = -1.0;
}

/* A loss or metric with 4 significant digits whatever its size: 0.6931, 1.234e-05, 2.5e+04
 * (never "0.0000" for a small loss). */
static void print_value(FILE *out, const char *name, double value)
{
    if (!isnan(value))
        fprintf(out, " %s %#.4g", name, value);
}

/* Accuracy as a fraction with 4 decimals (0.9123). */
static void print_accuracy(FILE *out, const char *name, double value)
{
    if (!isnan(value))
        fprintf(out, " %s %.4f", name, value);
}

/* "850ms" below 10 seconds, "12.3s" above. */
static void print_duration(FILE *out, double seconds)
{
    if (seconds < 10.0)
        fprintf(out, " %.0fms", seconds * 1e3);
    else
        fprintf(out, " %.1fs", seconds);
}

void dg__progress_batch(struct dg__progress *p, int64_t seen, double loss, double accuracy,
                        double metric, double elapsed)
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
    fprintf(p->out, "\r\033[Kepoch %d/%d [%s] %lld/%lld", p->epoch, p->cfg->epochs, bar,
            (long long)seen, (long long)p->total);
    print_value(p->out, "loss", loss);
    print_accuracy(p->out, "acc", accuracy);
    print_value(p->out, metric_name(p), metric);
    fprintf(p->out, " %.0f samples/s ETA %.0fs", rate, eta);
    fflush(p->out);
}

static dg_status write_plot(struct dg__progress *p)
{
    if (p->history == NULL || p->n_history == 0)
        return DG_OK;
    dg_status st = dg_plot_history(p->history, p->n_history, p->cfg->metric_name,
                                   p->cfg->plot_path);
    if (st != DG_OK && p->error[0] == '\0')
        snprintf(p->error, sizeof p->error, "cannot write the plot '%s': %s",
                 p->cfg->plot_path, strerror(errno));
    return st;
}

void dg__progress_epoch_end(struct dg__progress *p, const dg_epoch_stats *s)
{
    if (!isnan(s->lr) && s->lr != p->base_lr)
        p->show_lr = true; /* a schedule runs: show the lr from now on */
    if (p->cfg->verbose > 0) {
        fprintf(p->out, "%sepoch %d/%d", p->live ? "\r\033[K" : "", s->epoch, p->cfg->epochs);
        print_value(p->out, "loss", s->loss);
        print_accuracy(p->out, "acc", s->accuracy);
        print_value(p->out, metric_name(p), s->metric);
        print_value(p->out, "val_loss", s->val_loss);
        print_accuracy(p->out, "val_acc", s->val_accuracy);
        if (!isnan(s->val_metric))
            fprintf(p->out, " val_%s %#.4g", metric_name(p), s->val_metric);
        if (p->show_lr)
            fprintf(p->out, " lr %.3g", s->lr);
        fprintf(p->out, " %.0f samples/s", s->samples_per_s);
        print_duration(p->out, s->seconds);
        fputc('\n', p->out);
        fflush(p->out);
    }
    if (p->csv != NULL) {
        fprintf(p->csv, "%d,%.9g,%.6g,%.9g,%.9g,%.6g,%.9g,%.4f,%.1f,%.9g\n", s->epoch, s->loss,
                s->accuracy, s->metric, s->val_loss, s->val_accuracy, s->val_metric,
                s->seconds, s->samples_per_s, s->lr);
        fflush(p->csv);
    }
    if (p->history != NULL && p->n_history < p->cfg->epochs) {
        p->history[p->n_history++] = *s;
        write_plot(p); /* after every epoch, so a long run can be watched; checked at close */
    }
}

dg_status dg__progress_close(struct dg__progress *p)
{
    bool failed = false;
    if (p->csv != NULL) {
        failed = ferror(p->csv) != 0;
        failed = fclose(p->csv) != 0 || failed;
        p->csv = NULL;
        if (failed)
            snprintf(p->error, sizeof p->error, "writing the CSV file '%s' failed",
                     p->cfg->csv_path);
    }
    if (!failed && write_plot(p) != DG_OK)
        failed = true;
    dg__free(p->history);
    p->history = NULL;
    return failed ? DG_ERR_IO : DG_OK;
}
