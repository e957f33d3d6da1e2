/* Learning-rate schedules: pure functions of (schedule, base lr, step). Formulas in
 * include/dagrad_optim.h and docs/optimizers.md. */
#include "optim_internal.h"

#include <math.h>

dg_schedule dg_schedule_constant(void)
{
    return (dg_schedule){.kind = DG_SCHEDULE_CONSTANT};
}

dg_schedule dg_schedule_step(int64_t step_size, double gamma)
{
    return (dg_schedule){.kind = DG_SCHEDULE_STEP, .step_size = step_size, .gamma = gamma};
}

dg_schedule dg_schedule_exponential(double gamma)
{
    return (dg_schedule){.kind = DG_SCHEDULE_EXPONENTIAL, .gamma = gamma};
}

dg_schedule dg_schedule_cosine(int64_t warmup_steps, int64_t total_steps, double min_lr)
{
    return (dg_schedule){.kind = DG_SCHEDULE_COSINE, .warmup_steps = warmup_steps,
                         .total_steps = total_steps, .min_lr = min_lr};
}

const char *dg__schedule_problem(const dg_schedule *s, double base_lr)
{
    if (!(base_lr >= 0.0) || isinf(base_lr))
        return "base lr must be finite and >= 0";
    switch (s->kind) {
    case DG_SCHEDULE_CONSTANT:
        return NULL;
    case DG_SCHEDULE_STEP:
        if (s->step_size <= 0)
            return "step schedule: step_size must be > 0";
        /* fall through */
    case DG_SCHEDULE_EXPONENTIAL:
        if (!(s->gamma >= 0.0) || isinf(s->gamma))
            return "gamma must be finite and >= 0";
        return NULL;
    case DG_SCHEDULE_COSINE:
        if (s->warmup_steps < 0)
            return "cosine schedule: warmup_steps must be >= 0";
        if (s->total_steps <= s->warmup_steps)
            return "cosine schedule: total_steps must be > warmup_steps";
        if (!(s->min_lr >= 0.0) || !(s->min_lr <= base_lr))
            return "cosine schedule: min_lr must be in [0, base lr]";
        return NULL;
    default:
        return "unknown schedule kind";
    }
}

double dg_schedule_lr(const dg_schedule *s, double base_lr, int64_t step)
{
    if (s == NULL || step < 0 || dg__schedule_problem(s, base_lr) != NULL)
        return NAN;
    switch (s->kind) {
    case DG_SCHEDULE_STEP:
        return base_lr * pow(s->gamma, (double)(step / s->step_size));
    case DG_SCHEDULE_EXPONENTIAL:
        return base_lr * pow(s->gamma, (double)step);
    case DG_SCHEDULE_COSINE: {
        const int64_t warmup = s->warmup_steps, total = s->total_steps;
        if (step < warmup)
            return base_lr * (double)(step + 1) / (double)warmup;
        if (step >= total)
            return s->min_lr;
        const double progress = (double)(step - warmup) / (double)(total - warmup);
        return s->min_lr + (base_lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    default:
        return base_lr;
    }
}
