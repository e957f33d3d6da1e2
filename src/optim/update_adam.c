/*
 * Adam and AdamW update kernel (torch.optim.Adam / AdamW, single-tensor path), per element,
 * t = the step number counted from 1:
 *   g     = clamp(grad) * grad_scale
 *   Adam:  g = g + weight_decay * p                 (L2)
 *   AdamW: p = p * (1 - lr * weight_decay)          (decoupled)
 *   m     = beta1 * m + (1 - beta1) * g
 *   v     = beta2 * v + (1 - beta2) * g * g
 *   vmax  = max(vmax, v); v' = vmax                 (amsgrad; else v' = v)
 *   p     = p - (lr / (1 - beta1^t)) * m / (sqrt(v') / sqrt(1 - beta2^t) + eps)
 * PyTorch skips the L2 term when weight_decay == 0; adding 0 * p differs only for an
 * infinite or NaN parameter, and keeps the loop body flat (GCC -O2 vectorizes no branches).
 */
#include "optim_internal.h"

#include <math.h>

/* The loop with the variant flags as compile-time constants (after inlining). */
static inline __attribute__((always_inline)) void
adam_loop(const struct dg__step_scalars *s, int64_t n, float *restrict p,
          const float *restrict grad, float *restrict m, float *restrict v,
          float *restrict vmax, const int amsgrad, const int decoupled)
{
    const float limit = s->clip_value, scale = s->grad_scale, wd = s->weight_decay;
    const float beta1 = s->u.adam.beta1, one_minus_beta1 = s->u.adam.one_minus_beta1;
    const float beta2 = s->u.adam.beta2, one_minus_beta2 = s->u.adam.one_minus_beta2;
    const float neg_step_size = s->u.adam.neg_step_size;
    const float bias_correction2_sqrt = s->u.adam.bias_correction2_sqrt;
    const float eps = s->u.adam.eps, decay_factor = s->u.adam.decay_factor;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float w = p[i];
        float g = dg__clamp_grad(grad[i], limit) * scale;
        if (decoupled)
            w = w * decay_factor;
        else
            g = g + wd * w;
        const float mi = m[i] * beta1 + one_minus_beta1 * g;
        const float vi = v[i] * beta2 + one_minus_beta2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float second = vi;
        if (amsgrad) {
            const float old = vmax[i];
            second = old > vi ? old : vi; /* a NaN in v propagates, as torch.maximum */
            vmax[i] = second;
        }
        const float denom = sqrtf(second) / bias_correction2_sqrt + eps;
        p[i] = w + neg_step_size * mi / denom;
    }
}

DG__WIDE_KERNEL void dg__adam_update(const struct dg__step_scalars *s, int64_t n, float *param,
                     const float *grad, float *const *state)
{
    const int decoupled = s->u.adam.decoupled;
    if (s->u.adam.amsgrad)
        decoupled ? adam_loop(s, n, param, grad, state[0], state[1], state[2], 1, 1)
                  : adam_loop(s, n, param, grad, state[0], state[1], state[2], 1, 0);
    else
        decoupled ? adam_loop(s, n, param, grad, state[0], state[1], NULL, 0, 1)
                  : adam_loop(s, n, param, grad, state[0], state[1], NULL, 0, 0);
}
