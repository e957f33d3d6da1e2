/*
 * The op registry: one line per op. The enum (dg_op_id) and the table (registry.c) are both
 * generated from this list, so their order cannot drift. Adding an op: one file in src/ops/
 * defining `const struct dg_op_def dg_op_<name>`, one line here, one row in the op tests.
 * No include guard: included several times with different DG_OP definitions.
 */
/* elementwise binary with broadcasting: binary.c */
DG_OP(add)
DG_OP(sub)
DG_OP(mul)
DG_OP(div)
DG_OP(maximum)
DG_OP(minimum)
/* n-ary sum of equal shapes: add_n.c */
DG_OP(add_n)
/* comparison masks (1.0 / 0.0), no gradient flows: compare.c */
DG_OP(equal)
DG_OP(greater)
DG_OP(not_equal)
DG_OP(greater_equal)
DG_OP(less)
DG_OP(less_equal)
/* unary math: unary_math.c */
DG_OP(neg)
DG_OP(abs)
DG_OP(sign)
DG_OP(exp)
DG_OP(log)
DG_OP(sqrt)
DG_OP(square)
DG_OP(pow_scalar)
DG_OP(scale)
DG_OP(add_scalar)
/* activations and their fused backward kernels: activation.c */
DG_OP(relu)
DG_OP(relu_grad)
DG_OP(leaky_relu)
DG_OP(leaky_relu_grad)
DG_OP(sigmoid)
DG_OP(sigmoid_grad)
DG_OP(tanh)
DG_OP(tanh_grad)
DG_OP(gelu)
DG_OP(gelu_grad)
DG_OP(softplus)
/* matrix product: matmul.c */
DG_OP(matmul)
/* reductions and their backward helpers: reduce.c */
DG_OP(sum)
DG_OP(mean)
DG_OP(max)
DG_OP(sum_to)
DG_OP(expand_reduced)
DG_OP(size_ratio)
DG_OP(broadcast_like)
/* layout: reshape.c, permute.c, broadcast.c, slice.c (with concat's backward pieces),
 * concat.c */
DG_OP(reshape)
DG_OP(reshape_as)
DG_OP(permute)
DG_OP(broadcast_to)
DG_OP(slice)
DG_OP(pad_slice)
DG_OP(concat)
DG_OP(concat_slice)
DG_OP(concat_pad)
/* normalisation: softmax.c */
DG_OP(softmax)
DG_OP(log_softmax)
/* gradient control: stop_gradient.c */
DG_OP(stop_gradient)
/* losses (mean over the batch) and their fused gradients: loss.c */
DG_OP(softmax_cross_entropy)
DG_OP(softmax_cross_entropy_grad)
DG_OP(ce_row_weights)
DG_OP(bce)
DG_OP(bce_with_logits)
DG_OP(mse_loss)
DG_OP(l1_loss)
DG_OP(huber_loss)
/* regularisation: dropout.c */
DG_OP(dropout)
/* images: conv.c (convolution, its transpose and the two gradient ops), pool.c */
DG_OP(conv2d)
DG_OP(conv_transpose2d)
DG_OP(conv2d_input_grad)
DG_OP(conv2d_weight_grad)
DG_OP(max_pool2d)
DG_OP(max_pool2d_grad)
DG_OP(max_pool2d_gather)
DG_OP(avg_pool2d)
DG_OP(avg_pool2d_grad)
DG_OP(adaptive_avg_pool2d)
DG_OP(adaptive_avg_pool2d_grad)
/* layer and group normalisation: norm.c; layer norm's fused gradients: norm_grad.c */
DG_OP(layer_norm)
DG_OP(group_norm)
DG_OP(layer_norm_grad)
DG_OP(layer_norm_gamma_grad)
/* padding and nearest upsampling: pad.c */
DG_OP(pad2d)
DG_OP(pad2d_grad)
DG_OP(upsample_nearest2d)
/* batch normalisation (mode from the run key): batchnorm.c */
DG_OP(batch_norm)
DG_OP(batch_norm_mode)
DG_OP(batch_norm_grad)
DG_OP(batch_norm_gamma_grad)
/* sequence ops: embedding.c */
DG_OP(embedding)
DG_OP(embedding_grad)
/* selection: select.c */
DG_OP(where)
DG_OP(argmax)
DG_OP(argmin)
DG_OP(cast)
/* fused scaled dot-product attention: attention.c */
DG_OP(attention)
DG_OP(attention_grad)
/* a whole LSTM layer's recurrence, fused: lstm.c */
DG_OP(lstm_seq)
DG_OP(lstm_seq_grad)
/* a whole GRU layer's recurrence, fused: gru.c */
DG_OP(gru_seq)
DG_OP(gru_seq_grad)
