/*
 * RMSProp update kernel (torch.optim.RMSprop, single-tensor path), per element:
 *   g   = clamp(grad) * grad_scale + weight_decay * p
 *   sq  = alpha * sq + (1 - alpha) * g * g
 *   centered:  ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(sq - ga * ga) + eps
 *   else:      avg = sqrt(sq) + eps
 *   momentum > 0:  buf = momentum * buf + g / avg;  p = p - lr * buf
 *   else:          p = p - lr * g / avg
 * PyTorch skips the L2 term when weight_decay == 0; adding 0 * p differs only for an
 * infinite or NaN parameter, and keeps the loop body flat (GCC -O2 vectorizes no branches).
 */
#include "optim_internal.h"

#include <math.h>

/* The loop with the variant flags as compile-time constants (after inlining). */
static inline __attribute__((always_inline)) void
rmsprop_loop(const struct dg__step_scalars *s, int64_t n, float *restrict p,
             const float *restrict grad, float *restrict square_avg, float *restrict buf,
             float *restrict grad_avg, const int has_momentum, const int centered)
{
    const float limit = s->clip_value, scale = s->grad_scale, wd = s->weight_decay;
    const float neg_lr = s->neg_lr, alpha = s->u.rmsprop.alpha;
    const float one_minus_alpha = s->u.rmsprop.one_minus_alpha;
    const float eps = s->u.rmsprop.eps, momentum = s->u.rmsprop.momentum;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float w = p[i];
        const float g = dg__clamp_grad(grad[i], limit) * scale + wd * w;
        const float sq = square_avg[i] * alpha + one_minus_alpha * g * g;
        square_avg[i] = sq;
        float avg;
        if (centered) {
            const float ga = grad_avg[i] * alpha + one_minus_alpha * g;
            grad_avg[i] = ga;
            avg = sqrtf(sq + -ga * ga);
        } else {
            avg = sqrtf(sq);
        }
        avg = avg + eps;
        if (has_momentum) {
            const float b = buf[i] * momentum + g / avg;
            buf[i] = b;
            p[i] = w + neg_lr * b;
        } else {
            p[i] = w + neg_lr * g / avg;
        }
    }
}

DG__WIDE_KERNEL void dg__rmsprop_update(const struct dg__step_scalars *s, int64_t n, float *param,
                        const float *grad, float *const *state)
{
    float *square_avg = state[0], *buf = state[1], *grad_avg = state[2];
    if (buf != NULL)
        grad_avg != NULL ? rmsprop_loop(s, n, param, grad, square_avg, buf, grad_avg, 1, 1)
                         : rmsprop_loop(s, n, param, grad, square_avg, buf, NULL, 1, 0);
    else
        grad_avg != NULL ? rmsprop_loop(s, n, param, grad, square_avg, NULL, grad_avg, 0, 1)
                         : rmsprop_loop(s, n, param, grad, square_avg, NULL, NULL, 0, 0);
}
