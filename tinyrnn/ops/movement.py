"""Ops that move or select data without arithmetic: reshape, permute, index, concatenate,
stack, unbind, cast."""

from __future__ import annotations

import numpy as np

from ..engine import Function


class Reshape(Function):
    """y = x viewed with a new shape;  dy/dx reshapes back

    Shapes: any ``shape`` with the same number of elements (one entry may be -1).

    >>> import tinyrnn as tr
    >>> Reshape.apply(tr.zeros(2, 3), shape=(3, -1)).shape
    (3, 2)
    """

    @staticmethod
    def forward(ctx, x, shape):
        ctx.save_for_backward(x.shape)
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad_output):
        (shape,) = ctx.saved_tensors
        return grad_output.reshape(shape)


class Permute(Function):
    """y = x with axes reordered by ``dims``;  dy/dx applies the inverse permutation

    Shapes: output dimension k is input dimension ``dims[k]``.

    >>> import tinyrnn as tr
    >>> Permute.apply(tr.zeros(2, 3, 4), dims=(1, 2, 0)).shape
    (3, 4, 2)
    """

    @staticmethod
    def forward(ctx, x, dims):
        if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
            raise ValueError(
                f"permute: dims {tuple(dims)} is not a permutation of the {x.ndim} dimensions "
                f"of a tensor of shape {x.shape}"
            )
        dims = tuple(d % x.ndim for d in dims)
        ctx.save_for_backward(dims)
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad_output):
        (dims,) = ctx.saved_tensors
        inverse = [0] * len(dims)
        for k, d in enumerate(dims):
            inverse[d] = k
        return grad_output.transpose(inverse)


def _is_advanced(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) for i in items)


class GetItem(Function):
    """y = x[index];  dy/dx scatters the gradient back, adding where an index repeats

    Shapes: NumPy's indexing rules (basic and advanced); ``index`` holds no tensors.

    >>> import tinyrnn as tr
    >>> x = tr.zeros(3, requires_grad=True)
    >>> GetItem.apply(x, index=[0, 0, 2]).sum().backward(); x.grad.tolist()
    [2.0, 0.0, 1.0]
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.save_for_backward(x.shape, x.dtype, index)
        try:
            return np.asarray(x[index])
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad_output):
        shape, dtype, index = ctx.saved_tensors
        grad = np.zeros(shape, dtype=grad_output.dtype)
        if _is_advanced(index):
            np.add.at(grad, index, grad_output)
        else:
            grad[index] = grad_output
        return grad


class Cat(Function):
    """y = concatenate(xs, dim);  dy/dx_k is the slice of the gradient that x_k filled

    Shapes: inputs agree except along ``dim``, where the output has the sum of their sizes.

    >>> import tinyrnn as tr
    >>> Cat.apply(tr.zeros(2, 1), tr.ones(2, 3), dim=1).shape
    (2, 4)
    """

    @staticmethod
    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("cat: expected a non-empty sequence of tensors")
        ndim = xs[0].ndim
        if ndim == 0:
            raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
        d = dim % ndim if -ndim <= dim < ndim else None
        shapes = [x.shape for x in xs]
        if d is None or any(
            len(s) != ndim or s[:d] + s[d + 1 :] != shapes[0][:d] + shapes[0][d + 1 :]
            for s in shapes
        ):
            raise ValueError(
                f"cat: tensors of shapes {shapes} cannot be joined along dim {dim}; all "
                "dimensions except that one must match"
            )
        ctx.save_for_backward(d, np.cumsum([s[d] for s in shapes])[:-1])
        return np.concatenate(xs, axis=d)

    @staticmethod
    def backward(ctx, grad_output):
        d, cuts = ctx.saved_tensors
        return tuple(np.split(grad_output, cuts, axis=d))


class Stack(Function):
    """y = stack(xs, dim) (a new axis);  dy/dx_k = the k-th slice along that axis

    Shapes: k inputs of shape S give S with k inserted at ``dim``.

    >>> import tinyrnn as tr
    >>> Stack.apply(tr.zeros(3), tr.ones(3), dim=1).shape
    (3, 2)
    """

    @staticmethod
    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("stack: expected a non-empty sequence of tensors")
        shapes = [x.shape for x in xs]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"stack: expected tensors of equal shape, got {shapes}")
        ndim = xs[0].ndim + 1
        if not -ndim <= dim < ndim:
            raise IndexError(f"stack: dim {dim} out of range for a result with {ndim} dims")
        d = dim % ndim
        ctx.save_for_backward(d)
        return np.stack(xs, axis=d)

    @staticmethod
    def backward(ctx, grad_output):
        (d,) = ctx.saved_tensors
        return tuple(np.moveaxis(grad_output, d, 0))


class Unbind(Function):
    """ys = (x[0], ..., x[T-1]): a tensor split along its first axis into one output per index,
    in one node;  dy/dx stacks the outputs' gradients (the engine passes zeros for outputs that
    got none)

    Splitting a sequence into its steps this way costs one node and one stacked gradient,
    where T slices would each allocate a full (T, ...) gradient in backward.

    Shapes: x (T, ...) with T >= 1 gives T outputs of shape (...).

    >>> import tinyrnn as tr
    >>> [y.shape for y in Unbind.apply(tr.zeros(3, 2, 4))]
    [(2, 4), (2, 4), (2, 4)]
    """

    @staticmethod
    def forward(ctx, x):
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"unbind: expected a tensor with a non-empty first axis, got shape {x.shape}"
            )
        return tuple(np.asarray(x[t]) for t in range(x.shape[0]))

    @staticmethod
    def backward(ctx, *grad_outputs):
        return np.stack(grad_outputs)


class Cast(Function):
    """y = x converted to ``dtype``;  dy/dx = 1 (the gradient is cast back by the engine)

    Shapes: y has x's shape.

    >>> import tinyrnn as tr
    >>> x = tr.ones(2, requires_grad=True)
    >>> y = Cast.apply(x, dtype=tr.float64); y.sum().backward(); y.dtype, x.grad.dtype
    (dtype('float64'), dtype('float32'))
    """

    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output
