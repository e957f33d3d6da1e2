/*
 * The attribute of the ops that carry one float (pow_scalar's exponent, scale's factor,
 * add_scalar's addend in unary_math.c; leaky_relu's slope in activation.c).
 */
#ifndef DG_SCALAR_ATTRS_H
#define DG_SCALAR_ATTRS_H

struct dg_scalar_attrs {
    float value;
};

static inline const struct dg_scalar_attrs *scalar_attrs(const void *attrs)
{
    return attrs;
}

#endif
