/* dagrad_dist.h in a library built without MPI: every dg_dist says so. */
#include "dagrad.h"
#include "dagrad_dist.h"
#include "alloc.h"

struct dg_dist {
    int unused;
};

static const char message[] = "dist: dagrad was built without MPI (configure with -Dmpi=enabled "
                              "and an MPI installed)";

dg_dist *dg_dist_init(int *argc, char ***argv, const dg_dist_options *opts)
{
    (void)argc;
    (void)argv;
    (void)opts;
    return dg__calloc(1, sizeof(dg_dist));
}

dg_status dg_dist_status(const dg_dist *d)
{
    return d ? DG_ERR_STATE : DG_ERR_INVALID_ARG;
}

const char *dg_dist_error(const dg_dist *d)
{
    return d ? message : "dist: NULL";
}

int dg_dist_rank(const dg_dist *d)
{
    (void)d;
    return 0;
}

int dg_dist_size(const dg_dist *d)
{
    (void)d;
    return 1;
}

const dg_fit_parallel *dg_dist_fit(dg_dist *d)
{
    (void)d;
    return NULL;
}

dg_dist_stats dg_dist_get_stats(const dg_dist *d)
{
    (void)d;
    return (dg_dist_stats){0};
}

void dg_dist_reset_stats(dg_dist *d)
{
    (void)d;
}

dg_status dg_dist_sum(dg_dist *d, double *values, int n)
{
    (void)d;
    (void)values;
    (void)n;
    return DG_ERR_STATE;
}

void dg_dist_free(dg_dist *d)
{
    dg__free(d);
}
