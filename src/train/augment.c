/*
 * Random crop (zero padding, crop back) and horizontal flip of training images, in place.
 * Example i of epoch e draws from dg_rng_split(dg_rng_split(dg_rng_split(seed, AUGMENT), e), i):
 * a function of (seed, epoch, example) alone, like the shuffle and the dropout masks, so the
 * batch size, the shuffle and a resume change nothing.
 */
#include "augment.h"

#include <stddef.h>

/* The sub-stream of the fit seed that augmentation draws from ("aug" in ASCII), apart from
 * the shuffle's per-epoch streams. */
#define AUGMENT_STREAM UINT64_C(0x617567)

static bool settings_valid(const dg_augment *aug)
{
    return aug->channels > 0 && aug->height > 0 && aug->width > 0 && aug->crop_padding >= 0 &&
           aug->flip_probability >= 0.0 && aug->flip_probability <= 1.0;
}

/* out[y][x] = in[y + dy][x + dx] (0 outside) over one height x width plane, in place: with
 * the source offset dy * width + dx >= 0 a forward walk reads every source before it is
 * written (sources lie ahead), with a negative offset a backward walk does. */
static void shift_plane(float *plane, int64_t height, int64_t width, int64_t dy, int64_t dx)
{
    int64_t offset = dy * width + dx;
    int64_t n = height * width;
    for (int64_t k = 0; k < n; k++) {
        int64_t at = offset >= 0 ? k : n - 1 - k;
        int64_t y = at / width + dy, x = at % width + dx;
        bool inside = y >= 0 && y < height && x >= 0 && x < width;
        plane[at] = inside ? plane[at + offset] : 0.0f;
    }
}

static void flip_plane(float *plane, int64_t height, int64_t width)
{
    for (int64_t y = 0; y < height; y++) {
        float *row = plane + y * width;
        for (int64_t x = 0; x < width / 2; x++) {
            float t = row[x];
            row[x] = row[width - 1 - x];
            row[width - 1 - x] = t;
        }
    }
}

static void augment_one(const dg_augment *aug, const dg_rng *epoch_rng, int64_t example,
                        float *image)
{
    dg_rng rng = dg_rng_split(epoch_rng, (uint64_t)example);
    int64_t dy = 0, dx = 0;
    if (aug->crop_padding > 0) {
        uint64_t span = 2 * (uint64_t)aug->crop_padding + 1;
        dy = (int64_t)dg_rng_below(&rng, span) - aug->crop_padding;
        dx = (int64_t)dg_rng_below(&rng, span) - aug->crop_padding;
    }
    bool flip = aug->flip_probability > 0 && dg_rng_uniform_double(&rng) < aug->flip_probability;
    int64_t plane = aug->height * aug->width;
    for (int64_t c = 0; c < aug->channels; c++) {
        if (dy != 0 || dx != 0)
            shift_plane(image + c * plane, aug->height, aug->width, dy, dx);
        if (flip)
            flip_plane(image + c * plane, aug->height, aug->width);
    }
}

static dg_rng epoch_stream(uint64_t seed, int64_t epoch)
{
    dg_rng base;
    dg_rng_seed(&base, seed);
    dg_rng augment = dg_rng_split(&base, AUGMENT_STREAM);
    return dg_rng_split(&augment, (uint64_t)epoch);
}

dg_status dg_augment_image(const dg_augment *aug, uint64_t seed, int64_t epoch,
                           int64_t example, float *image)
{
    if (aug == NULL || image == NULL || !settings_valid(aug))
        return DG_ERR_INVALID_ARG;
    dg_rng rng = epoch_stream(seed, epoch);
    augment_one(aug, &rng, example, image);
    return DG_OK;
}

dg_status dg__augment_check(dg_graph *g, const dg_augment *aug, int64_t x_row)
{
    if (!aug->enable)
        return DG_OK;
    if (!settings_valid(aug)) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "fit: augment needs channels, height and "
                           "width > 0, crop_padding >= 0 and flip_probability in [0, 1], got "
                           "[%lld,%lld,%lld], %d, %g", (long long)aug->channels,
                           (long long)aug->height, (long long)aug->width, aug->crop_padding,
                           aug->flip_probability);
        return DG_ERR_INVALID_ARG;
    }
    int64_t values;
    if (__builtin_mul_overflow(aug->channels, aug->height, &values) ||
        __builtin_mul_overflow(values, aug->width, &values) || values != x_row) {
        dg_graph_set_error(g, DG_ERR_SHAPE, "fit: augment images [%lld,%lld,%lld] do not "
                           "match model.x's %lld values per example",
                           (long long)aug->channels, (long long)aug->height,
                           (long long)aug->width, (long long)x_row);
        return DG_ERR_SHAPE;
    }
    return DG_OK;
}

void dg__augment_batch(const dg_augment *aug, uint64_t seed, int64_t epoch, float *x,
                       int64_t x_row, const int64_t *order, int64_t first, int64_t batch)
{
    if (!aug->enable)
        return;
    dg_rng rng = epoch_stream(seed, epoch);
    for (int64_t i = 0; i < batch; i++)
        augment_one(aug, &rng, order ? order[first + i] : first + i, x + i * x_row);
}
