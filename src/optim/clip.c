/* The gradient-norm kernel of clipping by global norm (the driver is in optim.c). */
#include "optim_internal.h"

#include <math.h>

void dg__norm_accumulate(double acc[4], int64_t first_index, const float *grad, int64_t n,
                         float clip_value, double norm_type)
{
    if (isinf(norm_type)) {
        for (int64_t i = 0; i < n; i++) {
            double a = fabs((double)dg__clamp_grad(grad[i], clip_value));
            int lane = (int)((first_index + i) & 3);
            /* NaN wins, as torch's max-norm */
            acc[lane] = (a > acc[lane] || isnan(a)) && !isnan(acc[lane]) ? a : acc[lane];
        }
    } else if (norm_type == 2.0) {
        for (int64_t i = 0; i < n; i++) {
            double a = (double)dg__clamp_grad(grad[i], clip_value);
            acc[(first_index + i) & 3] += a * a;
        }
    } else if (norm_type == 1.0) {
        for (int64_t i = 0; i < n; i++)
            acc[(first_index + i) & 3] += fabs((double)dg__clamp_grad(grad[i], clip_value));
    } else {
        for (int64_t i = 0; i < n; i++) {
            double a = fabs((double)dg__clamp_grad(grad[i], clip_value));
            acc[(first_index + i) & 3] += pow(a, norm_type);
        }
    }
}
