/*
 * Training curves as an SVG picture: loss (train and validation) on the left, accuracy (or
 * the user metric when there is no accuracy) on the right, one point per epoch. Plain SVG
 * 1.1 text, no dependencies; values that were not measured (NaN) are left out.
 */
#include "dagrad.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define WIDTH 1000
#define HEIGHT 400
#define PANEL_W 400
#define PANEL_H 260
#define LEFT 70
#define TOP 50
/* Legend entries sit side by side under the panel. */
#define LEGEND_X(i) (40 + 190 * (i))

struct series {
    const char *label, *color, *dash;
    double (*get)(const dg_epoch_stats *);
};

static double get_loss(const dg_epoch_stats *s) { return s->loss; }
static double get_val_loss(const dg_epoch_stats *s) { return s->val_loss; }
static double get_accuracy(const dg_epoch_stats *s) { return s->accuracy; }
static double get_val_accuracy(const dg_epoch_stats *s) { return s->val_accuracy; }
static double get_metric(const dg_epoch_stats *s) { return s->metric; }
static double get_val_metric(const dg_epoch_stats *s) { return s->val_metric; }

static bool any_finite(const dg_epoch_stats *h, int n, double (*get)(const dg_epoch_stats *))
{
    for (int i = 0; i < n; i++)
        if (isfinite(get(&h[i])))
            return true;
    return false;
}

/* Writes text with the characters XML needs escaped. */
static void write_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* One panel at x offset `x0`: axes, ticks, grid, a line and dots per series, a legend. */
static void panel(FILE *f, int x0, const char *title, const dg_epoch_stats *h, int n,
                  const struct series *series, int n_series)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < n; i++) {
            double v = series[k].get(&h[i]);
            if (isfinite(v)) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
    if (!isfinite(lo))
        lo = 0, hi = 1;
    if (hi - lo < 1e-12 * (fabs(hi) + 1e-30)) { /* a flat curve: open a small range */
        double half = fabs(hi) > 0 ? fabs(hi) * 0.05 : 0.5;
        lo -= half;
        hi += half;
    }
    /* "Nice" ticks: a step of 1, 2, 2.5 or 5 times a power of ten, ends on multiples. */
    double raw = (hi - lo) / 4.0, power = pow(10.0, floor(log10(raw))), step = 10 * power;
    const double nice[4] = {1, 2, 2.5, 5};
    for (int i = 3; i >= 0; i--)
        if (nice[i] * power >= raw)
            step = nice[i] * power;
    lo = floor(lo / step) * step;
    hi = ceil(hi / step) * step;
    int n_ticks = (int)lround((hi - lo) / step);
    double x_lo = 1, x_hi = n > 1 ? n : 2;
    fprintf(f, "<g transform=\"translate(%d,%d)\">\n", x0, TOP);
    fprintf(f, "<text x=\"%d\" y=\"-16\" text-anchor=\"middle\" font-size=\"15\" "
               "font-weight=\"bold\">", PANEL_W / 2);
    write_text(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#444\"/>\n", PANEL_W, PANEL_H);
    for (int t = 0; t <= n_ticks; t++) { /* y ticks and grid */
        double v = lo + step * t;
        double y = PANEL_H - PANEL_H * (double)t / n_ticks;
        fprintf(f, "<line x1=\"0\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", y,
                PANEL_W, y);
        fprintf(f, "<text x=\"-6\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.4g</text>\n",
                y + 4, fabs(v) < step * 1e-9 ? 0.0 : v);
    }
    int every = n <= 10 ? 1 : (n + 9) / 10;
    for (int e = 1; e <= n; e += every) { /* x ticks: epochs */
        double x = PANEL_W * (e - x_lo) / (x_hi - x_lo);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%d</text>\n",
                x, PANEL_H + 16, e);
    }
    if ((n - 1) % every != 0) /* the last epoch always gets its tick */
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%d</text>\n",
                PANEL_W * (n - x_lo) / (x_hi - x_lo), PANEL_H + 16, n);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n",
            PANEL_W / 2, PANEL_H + 34);
    int legend = 0;
    for (int k = 0; k < n_series; k++) {
        if (!any_finite(h, n, series[k].get))
            continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"",
                series[k].color, series[k].dash ? " stroke-dasharray=\"" : "",
                series[k].dash ? series[k].dash : "", series[k].dash ? "\"" : "");
        for (int i = 0; i < n; i++) {
            double v = series[k].get(&h[i]);
            if (isfinite(v))
                fprintf(f, "%.1f,%.1f ", PANEL_W * (i + 1 - x_lo) / (x_hi - x_lo),
                        PANEL_H * (hi - v) / (hi - lo));
        }
        fputs("\"/>\n", f);
        for (int i = 0; i < n; i++) {
            double v = series[k].get(&h[i]);
            if (isfinite(v))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                        PANEL_W * (i + 1 - x_lo) / (x_hi - x_lo),
                        PANEL_H * (hi - v) / (hi - lo), series[k].color);
        }
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                   "stroke-width=\"2\"%s%s%s/>\n",
                LEGEND_X(legend), PANEL_H + 56, LEGEND_X(legend) + 24, PANEL_H + 56,
                series[k].color, series[k].dash ? " stroke-dasharray=\"" : "",
                series[k].dash ? series[k].dash : "", series[k].dash ? "\"" : "");
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\">", LEGEND_X(legend) + 30,
                PANEL_H + 60);
        write_text(f, series[k].label);
        fputs("</text>\n", f);
        legend++;
    }
    fputs("</g>\n", f);
}

dg_status dg_plot_history(const dg_epoch_stats *history, int n_epochs, const char *metric_name,
                          const char *path)
{
    if (history == NULL || n_epochs <= 0 || path == NULL)
        return DG_ERR_INVALID_ARG;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return DG_ERR_IO;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
               WIDTH, HEIGHT, WIDTH, HEIGHT);
    const struct series loss[2] = {
        {"train loss", "#1f77b4", NULL, get_loss},
        {"validation loss", "#ff7f0e", "6,4", get_val_loss},
    };
    panel(f, LEFT, "loss", history, n_epochs, loss, 2);
    bool accuracy = any_finite(history, n_epochs, get_accuracy) ||
                    any_finite(history, n_epochs, get_val_accuracy);
    bool metric = any_finite(history, n_epochs, get_metric) ||
                  any_finite(history, n_epochs, get_val_metric);
    char train_label[96], val_label[96];
    const char *name = metric_name ? metric_name : "metric";
    snprintf(train_label, sizeof train_label, "train %s", accuracy ? "accuracy" : name);
    snprintf(val_label, sizeof val_label, "validation %s", accuracy ? "accuracy" : name);
    if (accuracy || metric) {
        const struct series right[2] = {
            {train_label, "#1f77b4", NULL, accuracy ? get_accuracy : get_metric},
            {val_label, "#ff7f0e", "6,4", accuracy ? get_val_accuracy : get_val_metric},
        };
        panel(f, LEFT + PANEL_W + 90, accuracy ? "accuracy" : name, history, n_epochs, right,
              2);
    }
    fputs("</svg>\n", f);
    bool failed = ferror(f) != 0;
    failed = fclose(f) != 0 || failed;
    return failed ? DG_ERR_IO : DG_OK;
}
