"""The BSConv-S orthonormality regulariser."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_padfree")
class OrthonormalRegularizer(keras.regularizers.Regularizer):
    """``alpha * ||W W^T - I||_F`` on a pointwise kernel (BSConv-S, Haase & Amthor 2020).

    ``W`` is the kernel as PyTorch stores it, ``[C_out x C_in]``: a Keras 1x1 kernel of shape
    ``(1, 1, C_in, C_out)`` is reshaped to ``(C_in, C_out)`` and transposed. The norm is the plain
    Frobenius norm (not squared), as in the BSConv library.

    Args:
        alpha: weight of the term in the loss (0.1 in the paper).
    """

    def __init__(self, alpha: float = 0.1):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0:
            raise ValueError(f"Argument `alpha` must be a number >= 0. Received: alpha={alpha!r}.")
        self.alpha = float(alpha)

    def __call__(self, kernel):
        cout = kernel.shape[-1]
        w = ops.transpose(ops.reshape(kernel, (-1, cout)))
        gram = ops.matmul(w, ops.transpose(w))
        diff = gram - ops.eye(cout, dtype=gram.dtype)
        return self.alpha * ops.sqrt(ops.sum(ops.square(diff)))

    def get_config(self):
        return {"alpha": self.alpha}
