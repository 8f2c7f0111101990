"""The codec of everything that crosses nodes: stored records and courier events.

A :class:`Codec` is a registry of the types that may be stored or sent (each feature
registers its frozen dataclasses once, at setup). A value is encoded as a MessagePack
pair ``[tag, body]`` with msgspec, which encodes and decodes dataclasses field by field
from their type hints (nested dataclasses, tuples, enums, bytes, frozensets): the tag
names the registered type, so the decoder rebuilds exactly that class and validates it
(``__post_init__`` included). A tag nobody registered is refused, never imported. A type
whose natural encoding is deep (a linked list) registers a flat form instead
(:meth:`Codec.register_flat`): msgspec encodes nesting by recursion, which stops at
Python's recursion limit.

Batches (:meth:`Codec.encode_batch`) carry many events in one pub/sub message: the
backplane writes one message per destination node per flush.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgspec

__all__ = ["Codec", "CodecError"]

# builtin value types the store holds without registration: (tag, decode type)
_BUILTINS: Final[dict[type, tuple[str, Any]]] = {
    type(None): ("none", None),
    int: ("int", int),
    str: ("str", str),
    bytes: ("bytes", bytes),
    frozenset: ("frozenset", frozenset[str]),
}


class CodecError(ValueError):
    """A value of an unregistered type, or bytes that do not decode to a registered one."""


class Codec:
    """Registered types <-> MessagePack bytes; see the module docstring."""

    def __init__(self) -> None:
        self._tags: dict[type, str] = {}
        # types stored in a flat form: type -> (to the form, from the form)
        self._flat: dict[type, Callable[[Any], Any]] = {}
        self._unflat: dict[str, Callable[[Any], Any]] = {}
        self._decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}
        self._encoder = msgspec.msgpack.Encoder()
        self._pair = msgspec.msgpack.Decoder(tuple[str, msgspec.Raw])
        self._batch = msgspec.msgpack.Decoder(
            tuple[str, list[tuple[str, str, msgspec.Raw]]])
        for cls, (tag, kind) in _BUILTINS.items():
            self._tags[cls] = tag
            self._decoders[tag] = msgspec.msgpack.Decoder(kind)

    def register(self, *types: type) -> None:
        """Allow ``types`` (frozen dataclasses) to be stored and sent; idempotent.

        The tag is the class's qualified name: two classes of the same name in different
        modules cannot both be registered.
        """
        for cls in types:
            tag = cls.__qualname__
            known = self._decoders.get(tag)
            if self._tags.get(cls) == tag:
                continue
            if known is not None:
                raise CodecError(f"two registered types are named {tag!r}")
            self._tags[cls] = tag
            self._decoders[tag] = msgspec.msgpack.Decoder(cls)

    def register_flat(self, cls: type, form: Any, to_form: Callable[[Any], Any],
                      from_form: Callable[[Any], Any]) -> None:
        """Allow ``cls`` to be stored as ``to_form(value)`` (of msgspec type ``form``) and
        rebuilt with ``from_form``; idempotent."""
        tag = cls.__qualname__
        if self._tags.get(cls) == tag:
            return
        if tag in self._decoders:
            raise CodecError(f"two registered types are named {tag!r}")
        self._tags[cls] = tag
        self._decoders[tag] = msgspec.msgpack.Decoder(form)
        self._flat[cls] = to_form
        self._unflat[tag] = from_form

    def registered(self, cls: type) -> bool:
        """True when values of ``cls`` can be encoded."""
        return cls in self._tags

    def tag(self, value: object) -> str:
        """The tag of ``value``'s type; :class:`CodecError` when it is not registered."""
        tag = self._tags.get(type(value))
        if tag is None:
            raise CodecError(f"{type(value).__qualname__} is not registered with the codec")
        return tag

    def encode(self, value: object) -> bytes:
        """``value`` as ``[tag, body]`` MessagePack bytes."""
        flat = self._flat.get(type(value))
        if flat is not None:
            return self._encoder.encode((self.tag(value), flat(value)))
        return self._encoder.encode((self.tag(value), value))

    def decode(self, data: bytes) -> object:
        """The value :meth:`encode` wrote."""
        try:
            tag, raw = self._pair.decode(data)
            return self._decode_raw(tag, raw)
        except msgspec.DecodeError as exc:
            raise CodecError(f"undecodable value: {exc}") from None

    def encode_batch(self, origin: str, items: Sequence[tuple[str, object]]) -> bytes:
        """Events for several recipients in one message: ``items`` are (recipient, event)
        (a connection ID or a topic); ``origin`` is the sending node."""
        tags = self._tags
        rows = []
        for to, event in items:
            tag = tags.get(type(event))
            if tag is None:
                raise CodecError(f"{type(event).__qualname__} is not registered with the codec")
            flat = self._flat.get(type(event))
            rows.append((to, tag, event if flat is None else flat(event)))
        return self._encoder.encode((origin, rows))

    def decode_batch(self, data: bytes) -> tuple[str, Iterable[tuple[str, object]]]:
        """(origin, (recipient, event) pairs) of a batch; a row that does not decode
        raises :class:`CodecError` when it is reached."""
        try:
            origin, rows = self._batch.decode(data)
        except msgspec.DecodeError as exc:
            raise CodecError(f"undecodable batch: {exc}") from None
        return origin, ((to, self._decode_raw(tag, raw)) for to, tag, raw in rows)

    def _decode_raw(self, tag: str, raw: msgspec.Raw) -> object:
        decoder = self._decoders.get(tag)
        if decoder is None:
            raise CodecError(f"unknown type tag {tag[:60]!r}")
        try:
            value = decoder.decode(raw)
            unflat = self._unflat.get(tag)
            return value if unflat is None else unflat(value)
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            raise CodecError(f"a {tag} did not decode: {exc}") from None
