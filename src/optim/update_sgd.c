/*
 * SGD update kernel (torch.optim.SGD, single-tensor path), per element:
 *   g   = clamp(grad) * grad_scale + weight_decay * p
 *   buf = g                                               on the first step
 *   buf = momentum * buf + (1 - dampening) * g            otherwise
 *   d   = nesterov ? g + momentum * buf : buf             (d = g when momentum == 0)
 *   p   = p - lr * d
 * PyTorch skips the L2 term when weight_decay == 0; adding 0 * p differs only for an
 * infinite or NaN parameter, and keeps the loop body flat (GCC -O2 vectorizes no branches).
 */
#include "optim_internal.h"

/* The loop with the variant flags as compile-time constants (after inlining). */
static inline __attribute__((always_inline)) void
sgd_loop(const struct dg__step_scalars *s, int64_t n, float *restrict p,
         const float *restrict grad, float *restrict buf, const int has_momentum,
         const int nesterov, const int first)
{
    const float limit = s->clip_value, scale = s->grad_scale, neg_lr = s->neg_lr;
    const float wd = s->weight_decay, momentum = s->u.sgd.momentum;
    const float one_minus_dampening = s->u.sgd.one_minus_dampening;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float w = p[i];
        const float g = dg__clamp_grad(grad[i], limit) * scale + wd * w;
        float d = g;
        if (has_momentum) {
            const float b = first ? g : buf[i] * momentum + one_minus_dampening * g;
            buf[i] = b;
            d = nesterov ? g + momentum * b : b;
        }
        p[i] = w + neg_lr * d;
    }
}

DG__WIDE_KERNEL void dg__sgd_update(const struct dg__step_scalars *s, int64_t n, float *param,
                    const float *grad, float *const *state)
{
    float *buf = state[0];
    const int nesterov = s->u.sgd.nesterov, first = s->u.sgd.first_step;
    if (buf == NULL)
        sgd_loop(s, n, param, grad, NULL, 0, 0, 0);
    else if (first)
        nesterov ? sgd_loop(s, n, param, grad, buf, 1, 1, 1)
                 : sgd_loop(s, n, param, grad, buf, 1, 0, 1);
    else
        nesterov ? sgd_loop(s, n, param, grad, buf, 1, 1, 0)
                 : sgd_loop(s, n, param, grad, buf, 1, 0, 0);
}
