"""``einsum``: sums of products over named subscripts, and its gradient as more einsums.

``"bij,bjk->bik"`` names each operand's dims with letters; the output keeps the letters after
``->`` and sums over the rest:  z[b,i,k] = Σ_j x[b,i,j]·y[b,j,k]. Without ``->`` the output is
every letter used exactly once, in alphabetical order (uppercase first). ``...`` stands for any
number of dims, broadcast across operands (right-aligned) and kept at the front of an implicit
output. A letter repeated within one operand takes its diagonal (``"ii->"`` is the trace).
A dim of size 1 broadcasts against the same letter's size elsewhere, as in torch.

:func:`parse` turns the equation into one without ``...``: each operand's ellipsis becomes the
same fresh letters, right-aligned, and the operand is viewed with size-1 dims in front of its
ellipsis dims so that every operand has one letter per dim. :class:`Einsum` then only needs
explicit letters.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from minigrad import backend
from minigrad.autograd import Context, Function
from minigrad.ops.common import unbroadcast

LETTERS = string.ascii_letters


@dataclass(frozen=True)
class Spec:
    """An equation with explicit letters only.

    ``inputs[i]``: one letter per dim of operand i viewed as ``view_shapes[i]``; ``output``: the
    output's letters; ``sizes``: each letter's size (the largest of its broadcast sizes);
    ``spare``: letters the equation does not use, for the diagonals of backward.
    """

    inputs: tuple[str, ...]
    output: str
    view_shapes: tuple[tuple[int, ...], ...]
    sizes: dict[str, int]
    spare: str


def _split_term(term: str, equation: str, where: str) -> tuple[str, bool]:
    """A term's letters (without ``...``) and whether it had an ellipsis."""
    letters = term.replace("...", "", 1)
    if "." in letters:
        raise ValueError(f"einsum(): found '.' for {where} that is not part of one '...' in the "
                         f"equation {equation!r}")
    for c in letters:
        if c not in LETTERS:
            raise ValueError(f"einsum(): invalid subscript {c!r} given in the equation "
                             f"{equation!r}, subscripts must be in [a-zA-Z]")
    return letters, "..." in term


def parse(equation: str, shapes: list[tuple[int, ...]]) -> Spec:
    """Check ``equation`` against the operands' shapes and make every letter explicit, with
    torch's errors: too many or too few operands, subscripts that do not match an operand's
    dims, sizes that do not broadcast, output letters that are missing, repeated or unknown."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) < len(shapes):
        raise ValueError(f"einsum(): more operands ({len(shapes)}) were provided than specified "
                         f"in the equation {equation!r} ({len(terms)})")
    if len(terms) > len(shapes):
        raise ValueError(f"einsum(): fewer operands ({len(shapes)}) were provided than "
                         f"specified in the equation {equation!r} ({len(terms)})")
    parsed = [_split_term(term, equation, f"operand {i}") for i, term in enumerate(terms)]
    ellipsis_ndim = 0
    for i, ((letters, has_ellipsis), shape) in enumerate(zip(parsed, shapes, strict=True)):
        if len(letters) > len(shape) or (not has_ellipsis and len(letters) != len(shape)):
            raise ValueError(f"einsum(): the number of subscripts in the equation "
                             f"({len(letters)}) does not match the number of dimensions "
                             f"({len(shape)}) for operand {i} (shape {shape})"
                             + ("" if has_ellipsis else " and no ellipsis was given"))
        if has_ellipsis:
            ellipsis_ndim = max(ellipsis_ndim, len(shape) - len(letters))

    used = set(eq) & set(LETTERS)
    free = [c for c in LETTERS if c not in used]
    repeats = max(len(letters) - len(set(letters)) for letters, _ in parsed)
    if ellipsis_ndim + repeats > len(free):  # backward names each repeat with a spare letter
        raise ValueError(f"einsum(): the equation {equation!r} needs more than 52 distinct "
                         "subscripts")
    ell, spare = "".join(free[:ellipsis_ndim]), "".join(free[ellipsis_ndim:])

    inputs, view_shapes = [], []
    sizes: dict[str, int] = {}
    for i, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        before, has_ellipsis, after = term.partition("...")
        k = len(shape) - len(before) - len(after) if has_ellipsis else 0
        letters = before + (ell if has_ellipsis else "") + after
        view = (shape[:len(before)] + (1,) * (ellipsis_ndim - k) + shape[len(before):]
                if has_ellipsis else shape)
        seen_here: dict[str, int] = {}
        for pos, (c, n) in enumerate(zip(letters, view, strict=True)):
            if c in seen_here and seen_here[c] != n:
                raise ValueError(f"einsum(): subscript {c} is repeated for operand {i} (shape "
                                 f"{shape}) but the sizes don't match, {seen_here[c]} != {n}")
            seen_here[c] = n
            known = sizes.get(c, 1)
            if n != 1 and known != 1 and n != known:
                what = (f"dimension {pos - len(before)} covered by ellipsis" if c in ell
                        else f"subscript {c}")
                raise ValueError(f"einsum(): {what} has size {n} for operand {i} (shape {shape}) "
                                 f"which does not broadcast with previously seen size {known}")
            sizes[c] = known if n == 1 else n
        inputs.append(letters)
        view_shapes.append(view)

    if arrow:
        out_letters, out_ellipsis = _split_term(rhs, equation, "the output")
        for c in out_letters:
            if c not in sizes:
                raise ValueError(f"einsum(): output subscript {c} does not appear in the "
                                 f"equation {equation!r} for any input operand")
            if out_letters.count(c) > 1:
                raise ValueError(f"einsum(): output subscript {c} appears more than once in the "
                                 f"output of {equation!r}")
        before, _, after = rhs.partition("...")
        output = before + (ell if out_ellipsis else "") + after
    else:
        counts = "".join(letters for letters, _ in parsed)
        output = ell + "".join(sorted(c for c in set(counts) if counts.count(c) == 1))
    return Spec(tuple(inputs), output, tuple(view_shapes), sizes, spare)


def _full(x: Any, letters: str, view_shape: tuple[int, ...], sizes: dict[str, int]) -> Any:
    """Operand ``x`` viewed with one dim per letter and broadcast to each letter's size."""
    xp = backend.array_module(x)
    return xp.broadcast_to(x.reshape(view_shape), tuple(sizes[c] for c in letters))


class Einsum(Function):
    """z = einsum(inputs -> output, x_0, x_1, ...): for each output index, the sum over every
    other letter of the product of the operands.

    dx_i = einsum(output, the other operands' letters -> x_i's letters; g, the other operands),
    since z is linear in each operand. Two cases need one more factor each:

    * a letter of x_i found neither in the output nor in another operand (summed out by x_i
      alone): g does not depend on it, so a vector of ones over that letter joins the einsum;
    * a letter repeated in x_i (a diagonal): its second and later occurrences get fresh
      letters, and an identity matrix (letter, fresh letter) per occurrence joins the einsum,
      so the gradient lands on the diagonal and 0 elsewhere.

    Shapes: operand i (view_shapes[i], broadcast to its letters' sizes) -> z (sizes of output);
    a gradient computed at the broadcast size is summed back over dims where x_i had size 1.
    """

    half_in_float32 = True  # on the CPU (Function's docstring)

    @staticmethod
    def forward(ctx: Context, *xs: Any, spec: Spec) -> Any:
        xp = backend.array_module(xs[0])
        ctx.save_for_backward(*xs)
        ctx.spec = spec
        full = [_full(x, s, v, spec.sizes)
                for x, s, v in zip(xs, spec.inputs, spec.view_shapes, strict=True)]
        return xp.einsum(",".join(spec.inputs) + "->" + spec.output, *full, optimize=True)

    @staticmethod
    def backward(ctx: Context, g: Any) -> tuple:
        xp = backend.array_module(g)
        spec: Spec = ctx.spec
        full = [_full(x, s, v, spec.sizes)
                for x, s, v in zip(ctx.saved, spec.inputs, spec.view_shapes, strict=True)]
        grads = []
        for i, (x, letters) in enumerate(zip(ctx.saved, spec.inputs, strict=True)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            terms = [spec.output] + [s for j, s in enumerate(spec.inputs) if j != i]
            operands = [g] + [f for j, f in enumerate(full) if j != i]
            elsewhere = set("".join(terms))
            for c in dict.fromkeys(letters):  # summed out by x_i alone: a vector of ones
                if c not in elsewhere:
                    terms.append(c)
                    operands.append(xp.ones(spec.sizes[c], dtype=g.dtype))
            target, spare = "", iter(spec.spare)
            for c in letters:  # a repeated letter: a fresh one, tied to it by an identity
                if c in target:
                    fresh = next(spare)
                    terms.append(c + fresh)
                    operands.append(xp.eye(spec.sizes[c], dtype=g.dtype))
                    c = fresh
                target += c
            gx = xp.einsum(",".join(terms) + "->" + target, *operands, optimize=True)
            grads.append(unbroadcast(gx, spec.view_shapes[i]).reshape(x.shape))
        return tuple(grads)
