"""Sets of slots as packed bits: every bit operation of the kitchen env, for any number of slots.

A set of ``n`` slots is stored as ``uint32[..., words]`` with ``words = ceil(n / 32)`` (at least 1): bit
``s % 32`` of word ``s // 32`` is slot ``s``. Inside the env a set is a :class:`Bits`, a tuple of one array
per word, and every operation is a Python loop over the (static) words — so under ``vmap`` each word is one
value per environment, and a kitchen of at most 32 slots runs exactly the one-word integer program: the loops
have one iteration and each operation is the single ``uint32`` instruction it always was.

Host-side helpers (:func:`pack`, :func:`unpack_host`, :func:`to_int`, :func:`from_int`) convert between
stored sets, boolean arrays and Python integers for tests, traces and tips.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

WORD_BITS = 32


def n_words(n_slots: int) -> int:
    """Words of a set of `n_slots` slots (at least one, so an empty kitchen still has a mask)."""
    return max(1, -(-n_slots // WORD_BITS))


class Bits(tuple):
    """A set of slots inside a step: one uint32 array per word (all of one shape, e.g. scalars per env)."""

    __slots__ = ()

    @staticmethod
    def load(stored: jax.Array) -> "Bits":
        """The set stored as uint32[..., words]."""
        return Bits(stored[..., i] for i in range(stored.shape[-1]))

    @staticmethod
    def empty(words: int) -> "Bits":
        return Bits(jnp.uint32(0) for _ in range(words))

    def store(self) -> jax.Array:
        """uint32[..., words]: the stored form."""
        return jnp.stack(self, axis=-1)

    def __and__(self, other: "Bits") -> "Bits":
        return Bits(a & b for a, b in zip(self, other, strict=True))

    def __or__(self, other: "Bits") -> "Bits":
        return Bits(a | b for a, b in zip(self, other, strict=True))

    def __invert__(self) -> "Bits":
        return Bits(~a for a in self)

    def any(self) -> jax.Array:
        """bool: the set is not empty."""
        return _or_all([a != 0 for a in self])

    def equals(self, other: "Bits") -> jax.Array:
        """bool: both sets are the same."""
        out = self[0] == other[0]
        for a, b in zip(self[1:], other[1:], strict=True):
            out = out & (a == b)
        return out

    def materialise(self) -> "Bits":
        return Bits(materialise(a) for a in self)


def where(condition: jax.Array, a: Bits, b: Bits) -> Bits:
    """`a` where `condition` holds, else `b` (word by word)."""
    return Bits(jnp.where(condition, x, y) for x, y in zip(a, b, strict=True))


def keep_if(condition: jax.Array, bits: Bits) -> Bits:
    """`bits` where `condition` holds, else the empty set."""
    return Bits(jnp.where(condition, x, jnp.uint32(0)) for x in bits)


def or_all(sets: Sequence[Bits]) -> Bits:
    """The union of one or more sets."""
    out = sets[0]
    for other in sets[1:]:
        out = out | other
    return out


def bit(slot: jax.Array, words: int) -> Bits:
    """The set holding `slot` alone (int32); empty for a negative slot (an idle worker's -1).

    Word i is ``1 << (slot - 32 i)`` as uint32: a shift by 32 or more (a slot in another word, or a negative
    difference read as unsigned) is 0 in XLA, so each word is one subtraction and one shift."""
    slot = jnp.asarray(slot, jnp.int32)
    return Bits(jnp.left_shift(jnp.uint32(1), (slot - WORD_BITS * i).astype(jnp.uint32)) for i in range(words))


def contains(bits: Bits, slot: jax.Array) -> jax.Array:
    """bool: `slot` is in the set."""
    return (bits & bit(slot, len(bits))).any()


def shift(bits: Bits, distance: int) -> Bits:
    """Every member moved `distance` slots up (down when negative); members moved out of range are dropped.
    `distance` is static."""
    words = len(bits)
    if words == 1:  # the single-word program as it always was
        a = bits[0]
        return Bits((jnp.left_shift(a, distance) if distance >= 0 else jnp.right_shift(a, -distance),))
    zero = jnp.zeros_like(bits[0])
    word_of = lambda i: bits[i] if 0 <= i < words else zero  # noqa: E731
    whole, part = divmod(abs(distance), WORD_BITS)
    out = []
    for i in range(words):
        if distance >= 0:
            low, lower = word_of(i - whole), word_of(i - whole - 1)
            value = jnp.left_shift(low, part)
            if part:
                value = value | jnp.right_shift(lower, WORD_BITS - part)
        else:
            high, higher = word_of(i + whole), word_of(i + whole + 1)
            value = jnp.right_shift(high, part)
            if part:
                value = value | jnp.left_shift(higher, WORD_BITS - part)
        out.append(value)
    return Bits(out)


def popcount(bits: Bits) -> jax.Array:
    """int32: the number of members."""
    counts = [jax.lax.population_count(a).astype(jnp.int32) for a in bits]
    return sum(counts[1:], counts[0])


def nth_set_bit(bits: Bits, n: jax.Array) -> jax.Array:
    """int32: the slot of the n-th (0-based) member; the word is chosen by running popcounts, the bit within
    it by a binary search on popcounts of its low half."""
    if len(bits) == 1:
        return _nth_in_word(bits[0], n)
    before, word, index, nth = jnp.int32(0), jnp.uint32(0), jnp.int32(0), jnp.int32(0)
    for i, a in enumerate(bits):
        count = jax.lax.population_count(a).astype(jnp.int32)
        inside = (n >= before) & (n < before + count)
        word = jnp.where(inside, a, word)
        index = jnp.where(inside, i, index)
        nth = jnp.where(inside, n - before, nth)
        before = before + count
    return index * WORD_BITS + _nth_in_word(word, nth)


def _nth_in_word(bits: jax.Array, n: jax.Array) -> jax.Array:
    position = jnp.zeros_like(n)
    for width in (16, 8, 4, 2, 1):
        low = jax.lax.population_count(bits & jnp.uint32((1 << width) - 1)).astype(jnp.int32)
        skip = n >= low
        n = jnp.where(skip, n - low, n)
        bits = jnp.where(skip, jnp.right_shift(bits, width), bits)
        position = jnp.where(skip, position + width, position)
    return position


def unpack(stored: jax.Array, n_slots: int) -> jax.Array:
    """bool[..., n_slots]: membership of every slot, from a stored set uint32[..., words]."""
    return unpack_bits(stored, n_slots).astype(bool)


def unpack_bits(stored: jax.Array, n_slots: int) -> jax.Array:
    """uint32[..., n_slots] of 0/1: membership of every slot (for features built straight from the bits)."""
    words = stored.shape[-1]
    if words == 1:
        return jnp.right_shift(stored, jnp.arange(n_slots, dtype=jnp.uint32)) & 1
    per_word = [jnp.right_shift(stored[..., i, None], jnp.arange(min(WORD_BITS, n_slots - WORD_BITS * i),
                                                                 dtype=jnp.uint32)) & 1
                for i in range(words)]
    return jnp.concatenate(per_word, axis=-1)


def materialise(x: jax.Array) -> jax.Array:
    """`x`, computed once and stored rather than recomputed inside each of its consumers.

    XLA on CPU has no fusion barrier (``optimization_barrier`` is dropped before fusion) and duplicates cheap
    elementwise producers into every consumer: a step's long integer chain would be recomputed once per
    output. An integer division by a non-constant counts as expensive, so XLA keeps it (with everything fused
    into it) as one stored result. The divisor ``1 | (bits >> 31)`` is always 1, which LLVM's known-bits
    analysis sees after fusion, so the division itself is dropped from the machine code."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    one = jax.lax.bitcast_convert_type(jnp.uint32(1) | jnp.right_shift(bits, 31), x.dtype)
    return jax.lax.div(x, one)


def _or_all(values: list[jax.Array]) -> jax.Array:
    out = values[0]
    for value in values[1:]:
        out = out | value
    return out


# ---- host side (numpy and Python integers) --------------------------------------------------------

def from_slots(slots: Iterable[int], n_slots: int) -> np.ndarray:
    """uint32[words]: the stored set of `slots`."""
    return from_int(sum(1 << s for s in set(slots)), n_words(n_slots))


def from_int(value: int, words: int) -> np.ndarray:
    """uint32[words]: the stored set whose members are the set bits of the Python integer `value`."""
    return np.asarray([(value >> (WORD_BITS * i)) & 0xFFFFFFFF for i in range(words)], np.uint32)


def to_int(stored) -> int:
    """The Python integer (bit s = slot s) of one stored set uint32[words]."""
    words = np.asarray(stored, np.uint64).reshape(-1)
    return sum(int(w) << (WORD_BITS * i) for i, w in enumerate(words))


def pack(members: np.ndarray) -> np.ndarray:
    """uint32[..., words] of bool[..., n_slots]."""
    members = np.asarray(members, bool)
    n_slots = members.shape[-1]
    words = n_words(n_slots)
    padded = np.zeros(members.shape[:-1] + (words * WORD_BITS,), np.uint64)
    padded[..., :n_slots] = members
    weights = np.left_shift(np.uint64(1), np.arange(WORD_BITS, dtype=np.uint64))
    per_word = padded.reshape(members.shape[:-1] + (words, WORD_BITS))
    return (per_word * weights).sum(axis=-1).astype(np.uint32)


def unpack_host(stored: np.ndarray, n_slots: int) -> np.ndarray:
    """bool[..., n_slots] of stored sets uint32[..., words] (numpy)."""
    stored = np.asarray(stored, np.uint32)
    bits = (stored[..., :, None] >> np.arange(WORD_BITS, dtype=np.uint32)) & 1
    return bits.reshape(stored.shape[:-1] + (-1,))[..., :n_slots].astype(bool)
