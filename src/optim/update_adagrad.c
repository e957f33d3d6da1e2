/*
 * Adagrad update kernel (torch.optim.Adagrad, dense single-tensor path), per element, with
 * t = the number of steps taken before this one:
 *   g   = clamp(grad) * grad_scale + weight_decay * p
 *   sum = sum + g * g
 *   p   = p - (lr / (1 + t * lr_decay)) * g / (sqrt(sum) + eps)
 * PyTorch skips the L2 term when weight_decay == 0; adding 0 * p differs only for an
 * infinite or NaN parameter, and keeps the loop body flat (GCC -O2 vectorizes no branches).
 */
#include "optim_internal.h"

#include <math.h>

DG__WIDE_KERNEL void dg__adagrad_update(const struct dg__step_scalars *s, int64_t n, float *param,
                        const float *grad, float *const *state)
{
    float *restrict p = param;
    const float *restrict gr = grad;
    float *restrict sum = state[0];
    const float limit = s->clip_value, scale = s->grad_scale, wd = s->weight_decay;
    const float neg_lr = s->neg_lr, eps = s->u.adagrad.eps;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float w = p[i];
        const float g = dg__clamp_grad(gr[i], limit) * scale + wd * w;
        const float acc = sum[i] + g * g;
        sum[i] = acc;
        p[i] = w + neg_lr * g / (sqrtf(acc) + eps);
    }
}
