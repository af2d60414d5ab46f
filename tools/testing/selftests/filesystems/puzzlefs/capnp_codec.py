#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A generic Cap'n Proto wire-format codec (stdlib only), and the PuzzleFS
schemas on top of it.

Written from the encoding specification (capnproto.org/encoding.html), for the
hostile-image generator: it decodes any message into an object graph and
encodes an object graph back, and it can build what a normal writer never
would (aliased objects, far pointers everywhere, many segments, raw pointer
words, trailing bytes).

Wire format summary (all little-endian, 64-bit words):
  stream framing   u32 segment count - 1, u32 size in words of each segment,
                   padding to a word, then the segments.
  struct pointer   bits 0-1 = 0, 2-31 signed offset B (words, from the end of
                   the pointer to the data section), 32-47 data words, 48-63
                   pointer words.  An all-zero word is the null pointer, so a
                   zero-sized struct is written with offset -1.
  list pointer     bits 0-1 = 1, 2-31 signed offset, 32-34 element size
                   (0 void, 1 bit, 2 byte, 3 two bytes, 4 four bytes, 5 eight
                   bytes, 6 pointer, 7 composite), 35-63 element count, or for
                   composite lists the word count of the body without its tag.
                   A composite body starts with a tag word shaped like a struct
                   pointer whose offset field is the element count.
  far pointer      bits 0-1 = 2, bit 2 double-far, 3-31 landing pad offset
                   (words from the start of the segment), 32-63 segment id.
                   Single: the pad is a normal pointer to the object (its
                   offset relative to the pad).  Double: the pad is a far
                   pointer to the object's content followed by a tag word (a
                   normal pointer with offset 0 describing the object).
  other pointer    bits 0-1 = 3 (capabilities).

Object graph:
  Struct(data: bytearray, ptrs: list)   data section bytes, pointer slots
  List(es, items [, dw, pc])            es = 0..7; items are ints (1-5),
                                        objects or None (6), Structs (7);
                                        es 0 keeps only a count
  Data(bytes)                           a byte list (es 2)
  Cap(index)                            a capability pointer
  RawPtr(word)                          a pointer word written verbatim
  Far(obj, double=False)                "point at obj through a far pointer"

An object that appears several times in the graph is encoded once and
pointed at several times (aliasing on purpose); the decoder gives one object
for every pointer that lands on the same place, so decoded aliasing survives
a round trip.

Field offsets of the PuzzleFS schemas (fs/puzzlefs/format/metadata.capnp and
manifest.capnp) are those of the generated readers in the same folder
(metadata_capnp.rs, manifest_capnp.rs): get_data_field::<T>(i) is byte
offset i * sizeof(T), get_bool_field(i) is bit i, get_pointer_field(i) is
pointer slot i, and the union discriminant of Inode.mode is the u16 at index
4 (byte 8).
"""

import struct

WORD = 8
U64 = (1 << 64) - 1

# element size codes of list pointers
ES_VOID, ES_BIT, ES_BYTE, ES_2, ES_4, ES_8, ES_PTR, ES_COMPOSITE = range(8)
ES_BYTES = {ES_BYTE: 1, ES_2: 2, ES_4: 4, ES_8: 8}


class CapnpError(Exception):
    """A message that does not decode."""


# --- pointer words -------------------------------------------------------------


def _off30(off):
    if not -(1 << 29) <= off < (1 << 29):
        raise CapnpError(f"pointer offset {off} out of range")
    return (off & 0x3FFFFFFF) << 2


def struct_ptr(off, dw, pc):
    """A struct pointer word (offset from the end of the pointer)."""
    return _off30(off) | (dw & 0xFFFF) << 32 | (pc & 0xFFFF) << 48


def list_ptr(off, es, n):
    """A list pointer word; n is the element count, or words for es 7."""
    return _off30(off) | 1 | (es & 7) << 32 | (n & 0x1FFFFFFF) << 35


def far_ptr(pad, seg, double=False):
    """A far pointer to the landing pad at word `pad` of segment `seg`."""
    return (pad & 0x1FFFFFFF) << 3 | (4 if double else 0) | 2 | (seg & 0xFFFFFFFF) << 32


def cap_ptr(index):
    return 3 | (index & 0xFFFFFFFF) << 32


def _signed30(w):
    off = (w >> 2) & 0x3FFFFFFF
    return off - (1 << 30) if off & (1 << 29) else off


def parse_ptr(w):
    """A pointer word as a tuple: None (null), ('S', off, dw, pc),
    ('L', off, es, n), ('F', pad, seg, double), ('C', index)."""
    if w == 0:
        return None
    k = w & 3
    if k == 0:
        return ("S", _signed30(w), (w >> 32) & 0xFFFF, w >> 48)
    if k == 1:
        return ("L", _signed30(w), (w >> 32) & 7, w >> 35)
    if k == 2:
        return ("F", (w >> 3) & 0x1FFFFFFF, w >> 32, bool(w & 4))
    return ("C", w >> 32)


# --- the object graph ----------------------------------------------------------


class Struct:
    """A struct: data section bytes and pointer slots. Reads past the end of
    either section give the default (0 / None), as a reader of a newer schema
    would; writes grow the section."""

    __slots__ = ("data", "ptrs", "loc")

    def __init__(self, data=b"", ptrs=None, dw=None, pc=None):
        self.data = bytearray(data)
        if dw is not None and len(self.data) < dw * WORD:
            self.data.extend(bytes(dw * WORD - len(self.data)))
        self.ptrs = list(ptrs or [])
        if pc is not None and len(self.ptrs) < pc:
            self.ptrs.extend([None] * (pc - len(self.ptrs)))
        self.loc = None  # (segment, word) where the decoder found it

    @property
    def dw(self):
        return (len(self.data) + WORD - 1) // WORD

    @property
    def pc(self):
        return len(self.ptrs)

    def _get(self, fmt, size, index):
        o = index * size
        if o + size > len(self.data):
            return 0
        return struct.unpack_from(fmt, self.data, o)[0]

    def _set(self, fmt, size, index, v):
        o = index * size
        if o + size > len(self.data):
            self.data.extend(bytes((o + size + WORD - 1) // WORD * WORD - len(self.data)))
        struct.pack_into(fmt, self.data, o, v)

    # index = field offset in units of the field's own size, as in the
    # generated readers' get_data_field::<T>(index)
    def u8(self, i):
        return self._get("<B", 1, i)

    def u16(self, i):
        return self._get("<H", 2, i)

    def u32(self, i):
        return self._get("<I", 4, i)

    def u64(self, i):
        return self._get("<Q", 8, i)

    def set_u8(self, i, v):
        self._set("<B", 1, i, v & 0xFF)

    def set_u16(self, i, v):
        self._set("<H", 2, i, v & 0xFFFF)

    def set_u32(self, i, v):
        self._set("<I", 4, i, v & 0xFFFFFFFF)

    def set_u64(self, i, v):
        self._set("<Q", 8, i, v & U64)

    def bool(self, bit):
        return bool(self.u8(bit // 8) >> (bit % 8) & 1)

    def set_bool(self, bit, v):
        b = self.u8(bit // 8)
        b = b | (1 << bit % 8) if v else b & ~(1 << bit % 8)
        self.set_u8(bit // 8, b)

    def ptr(self, i):
        return self.ptrs[i] if i < len(self.ptrs) else None

    def set_ptr(self, i, obj):
        if i >= len(self.ptrs):
            self.ptrs.extend([None] * (i + 1 - len(self.ptrs)))
        self.ptrs[i] = obj

    def copy(self):
        """A shallow copy: same pointer targets (they become shared)."""
        return Struct(self.data, self.ptrs)

    def __repr__(self):
        return f"Struct(dw={self.dw}, pc={self.pc})"


class List:
    """A list. es: element size code. items: ints for es 1-5 (bools for 1),
    objects or None for 6, Struct for 7. For es 0 only the count matters.
    dw/pc: the element struct size of a composite list (default: the largest
    element)."""

    __slots__ = ("es", "items", "count", "dw", "pc", "loc")

    def __init__(self, es, items=None, count=None, dw=None, pc=None):
        self.es = es
        self.items = list(items) if items is not None else []
        self.count = count  # es 0: element count
        self.dw = dw
        self.pc = pc
        self.loc = None

    def __len__(self):
        return self.count if self.es == ES_VOID else len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def struct_size(self):
        dw = self.dw if self.dw is not None else max([s.dw for s in self.items] or [0])
        pc = self.pc if self.pc is not None else max([s.pc for s in self.items] or [0])
        return dw, pc

    def __repr__(self):
        return f"List(es={self.es}, n={len(self)})"


class Data:
    """A Data (byte list) value."""

    __slots__ = ("value", "loc")

    def __init__(self, value=b""):
        self.value = bytes(value)
        self.loc = None

    def __repr__(self):
        return f"Data({self.value[:16]!r}{'...' if len(self.value) > 16 else ''}, {len(self.value)})"


class Cap:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


class RawPtr:
    """A pointer slot written verbatim (for crafted pointers)."""

    __slots__ = ("word",)

    def __init__(self, word):
        self.word = word & U64


class Far:
    """Point at `obj` through a far pointer (single or double)."""

    __slots__ = ("obj", "double")

    def __init__(self, obj, double=False):
        self.obj = obj
        self.double = double


class RawObj:
    """An object of raw words (body) pointed at by a near pointer of the
    given kind: ('S', dw, pc) or ('L', es, n). Nothing inside is fixed up."""

    __slots__ = ("body", "kind")

    def __init__(self, body, kind):
        self.body = bytes(body) + bytes(-len(body) % WORD)
        self.kind = kind


class RawPad:
    """A landing pad of raw words, pointed at by a far pointer (double or
    not) from the slot that holds it."""

    __slots__ = ("body", "double")

    def __init__(self, body, double=False):
        self.body = bytes(body) + bytes(-len(body) % WORD)
        self.double = double


# --- decoding --------------------------------------------------------------------


class Message:
    """A framed message: segment table, segments, trailing bytes.

    segments: list of bytes objects (whole words); trailing: bytes after the
    last segment. root() decodes the object graph. word(seg, i) and
    set_word(seg, i, w) give raw word access."""

    MAX_SEGMENTS = 1 << 16

    def __init__(self, buf, budget=1 << 26):
        buf = bytes(buf)
        if len(buf) < 8:
            raise CapnpError("message shorter than one word")
        n = struct.unpack_from("<I", buf, 0)[0] + 1
        if n > self.MAX_SEGMENTS:
            raise CapnpError(f"{n} segments")
        hdr = (4 + 4 * n + 7) // 8 * 8
        if len(buf) < hdr:
            raise CapnpError("segment table truncated")
        sizes = struct.unpack_from(f"<{n}I", buf, 4)
        self.header = hdr
        self.segments = []
        o = hdr
        for s in sizes:
            if o + s * WORD > len(buf):
                raise CapnpError("segment past the end of the message")
            self.segments.append(bytearray(buf[o:o + s * WORD]))
            o += s * WORD
        self.trailing = buf[o:]
        self.budget = budget
        self._memo = {}

    # raw words
    def nwords(self, seg):
        return len(self.segments[seg]) // WORD

    def word(self, seg, i):
        if not 0 <= seg < len(self.segments) or not 0 <= i < self.nwords(seg):
            raise CapnpError(f"word {i} of segment {seg} out of bounds")
        return struct.unpack_from("<Q", self.segments[seg], i * WORD)[0]

    def set_word(self, seg, i, w):
        struct.pack_into("<Q", self.segments[seg], i * WORD, w & U64)

    def to_bytes(self):
        """The framed message as it stands (segments edited in place kept)."""
        return frame([bytes(s) for s in self.segments]) + self.trailing

    def _spend(self, words):
        self.budget -= max(words, 1)
        if self.budget < 0:
            raise CapnpError("decode budget exhausted")

    def _check(self, seg, start, words):
        if not 0 <= seg < len(self.segments):
            raise CapnpError(f"segment {seg} does not exist")
        if start < 0 or start + words > self.nwords(seg):
            raise CapnpError(f"object [{start}, +{words}) outside segment {seg} ({self.nwords(seg)} words)")

    def root(self):
        if not self.segments or self.nwords(0) == 0:
            raise CapnpError("empty first segment")
        return self.read_ptr(0, 0)

    def read_ptr(self, seg, pos):
        """Decode the pointer at word pos of segment seg (and its target)."""
        w = self.word(seg, pos)
        p = parse_ptr(w)
        if p is None:
            return None
        if p[0] == "F":
            _, pad, pseg, double = p
            self._check(pseg, pad, 2 if double else 1)
            if not double:
                w2 = self.word(pseg, pad)
                if parse_ptr(w2) is None or parse_ptr(w2)[0] in ("F", "C"):
                    raise CapnpError("single-far landing pad is not a struct or list pointer")
                return self.read_ptr(pseg, pad)
            land = parse_ptr(self.word(pseg, pad))
            tag = parse_ptr(self.word(pseg, pad + 1))
            if land is None or land[0] != "F" or land[3]:
                raise CapnpError("double-far landing pad is not a single far pointer")
            if tag is None or tag[0] not in ("S", "L") or tag[1] != 0:
                raise CapnpError("double-far tag is not a struct or list pointer with offset 0")
            return self._object(land[2], land[1], tag)
        if p[0] == "C":
            return Cap(p[1])
        return self._object(seg, pos + 1 + p[1], p)

    def _object(self, seg, start, p):
        if p[0] == "S":
            _, _, dw, pc = p
            return self._struct(seg, start, dw, pc)
        _, _, es, n = p
        key = ("L", seg, start, es, n)
        if key in self._memo:
            self._spend(1)
            return self._memo[key]
        if es == ES_COMPOSITE:
            self._check(seg, start, n + 1)
            tag = parse_ptr(self.word(seg, start))
            if tag is None or tag[0] != "S":
                raise CapnpError("composite list tag is not a struct pointer")
            count = (self.word(seg, start) >> 2) & 0x3FFFFFFF
            dw, pc = tag[2], tag[3]
            if count * (dw + pc) > n:
                raise CapnpError(f"composite list of {count} x {dw + pc} words in {n} words")
            self._spend(max(n, count))
            lst = List(ES_COMPOSITE, dw=dw, pc=pc)
            lst.loc = (seg, start)
            self._memo[key] = lst
            lst.items = [self._struct(seg, start + 1 + i * (dw + pc), dw, pc) for i in range(count)]
            return lst
        if es == ES_VOID:
            self._spend(n)
            lst = List(ES_VOID, count=n)
            lst.loc = (seg, start)
            self._memo[key] = lst
            return lst
        bits = {ES_BIT: 1, ES_BYTE: 8, ES_2: 16, ES_4: 32, ES_8: 64, ES_PTR: 64}[es]
        words = (n * bits + 63) // 64
        self._check(seg, start, words)
        self._spend(words)
        raw = bytes(self.segments[seg][start * WORD:(start + words) * WORD])
        if es == ES_BYTE:
            obj = Data(raw[:n])
        elif es == ES_BIT:
            obj = List(ES_BIT, [bool(raw[i // 8] >> (i % 8) & 1) for i in range(n)])
        elif es == ES_PTR:
            obj = List(ES_PTR)
            self._memo[key] = obj
            obj.items = [self.read_ptr(seg, start + i) for i in range(n)]
        else:
            sz = ES_BYTES[es]
            fmt = {2: "<H", 4: "<I", 8: "<Q"}[sz]
            obj = List(es, [struct.unpack_from(fmt, raw, i * sz)[0] for i in range(n)])
        obj.loc = (seg, start)
        self._memo[key] = obj
        return obj

    def _struct(self, seg, start, dw, pc):
        key = ("S", seg, start, dw, pc)
        if key in self._memo:
            self._spend(1)
            return self._memo[key]
        self._check(seg, start, dw + pc)
        self._spend(dw + pc)
        s = Struct(self.segments[seg][start * WORD:(start + dw) * WORD])
        s.loc = (seg, start)
        self._memo[key] = s
        s.ptrs = [self.read_ptr(seg, start + dw + i) for i in range(pc)]
        return s


def decode(buf, budget=1 << 26):
    """(root object, Message) of a framed message."""
    m = Message(buf, budget)
    return m.root(), m


# --- encoding --------------------------------------------------------------------


def frame(segments, count_override=None, sizes_override=None):
    """The stream framing of a list of segments (bytes of whole words)."""
    sizes = list(sizes_override) if sizes_override is not None else [len(s) // WORD for s in segments]
    n = count_override if count_override is not None else len(segments)
    hdr = struct.pack(f"<I{len(sizes)}I", (n - 1) & 0xFFFFFFFF, *sizes)
    if len(hdr) % WORD:
        hdr += bytes(WORD - len(hdr) % WORD)
    return hdr + b"".join(bytes(s) for s in segments)


class Encoder:
    """Lay out an object graph in segments and write it.

    max_segment_words: start a new segment when an object does not fit in
        the current one (objects larger than that get a segment of their
        own); pointers between segments become far pointers.
    far: 'single' (landing pad next to the object, default) or 'double'
        (landing pad plus tag in the pointer's own segment) for pointers
        between segments.
    far_all: every pointer goes through a far pointer, even within a segment.
    """

    def __init__(self, max_segment_words=None, far="single", far_all=False):
        self.max = max_segment_words
        self.far = far
        self.far_all = far_all
        self.segs = [bytearray()]
        self.where = {}  # id(obj) -> (seg, start, kind tuple)
        self.keep = []  # keep objects alive while their id() is a key

    def _alloc(self, words, fresh_ok=True):
        seg = len(self.segs) - 1
        cur = len(self.segs[seg]) // WORD
        if self.max is not None and fresh_ok and cur > 0 and cur + words > self.max:
            self.segs.append(bytearray())
            seg += 1
            cur = 0
        self.segs[seg].extend(bytes(words * WORD))
        return seg, cur

    def _append(self, seg, words):
        cur = len(self.segs[seg]) // WORD
        self.segs[seg].extend(bytes(words * WORD))
        return cur

    def _put(self, seg, pos, w):
        struct.pack_into("<Q", self.segs[seg], pos * WORD, w & U64)

    def _layout(self, obj):
        """Allocate obj's body, write its non-pointer content; returns
        (seg, start, kind, [(seg, slot, child), ...])."""
        kids = []
        if isinstance(obj, Struct):
            dw, pc = obj.dw, obj.pc
            seg, start = self._alloc(dw + pc)
            self.segs[seg][start * WORD:start * WORD + len(obj.data)] = obj.data
            kind = ("S", dw, pc)
            kids = [(seg, start + dw + i, c) for i, c in enumerate(obj.ptrs)]
        elif isinstance(obj, Data):
            n = len(obj.value)
            seg, start = self._alloc((n + 7) // 8)
            self.segs[seg][start * WORD:start * WORD + n] = obj.value
            kind = ("L", ES_BYTE, n)
        elif isinstance(obj, List):
            es = obj.es
            if es == ES_COMPOSITE:
                dw, pc = obj.struct_size()
                n = len(obj.items)
                seg, start = self._alloc(1 + n * (dw + pc))
                self._put(seg, start, struct_ptr(0, dw, pc) & ~(0x3FFFFFFF << 2) | (n & 0x3FFFFFFF) << 2)
                for i, s in enumerate(obj.items):
                    base = start + 1 + i * (dw + pc)
                    d = bytes(s.data[:dw * WORD])
                    self.segs[seg][base * WORD:base * WORD + len(d)] = d
                    for j, c in enumerate(s.ptrs[:pc]):
                        kids.append((seg, base + dw + j, c))
                    if id(s) not in self.where:
                        self.where[id(s)] = (seg, base, ("S", dw, pc))
                        self.keep.append(s)
                kind = ("L", ES_COMPOSITE, n * (dw + pc))
            elif es == ES_VOID:
                seg, start = self._alloc(0)
                kind = ("L", ES_VOID, obj.count or 0)
            elif es == ES_PTR:
                n = len(obj.items)
                seg, start = self._alloc(n)
                kids = [(seg, start + i, c) for i, c in enumerate(obj.items)]
                kind = ("L", ES_PTR, n)
            elif es == ES_BIT:
                n = len(obj.items)
                seg, start = self._alloc((n + 63) // 64)
                for i, b in enumerate(obj.items):
                    if b:
                        self.segs[seg][start * WORD + i // 8] |= 1 << (i % 8)
                kind = ("L", ES_BIT, n)
            else:
                sz = ES_BYTES[es]
                n = len(obj.items)
                seg, start = self._alloc((n * sz + 7) // 8)
                fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[sz]
                for i, v in enumerate(obj.items):
                    struct.pack_into(fmt, self.segs[seg], start * WORD + i * sz, v & ((1 << (8 * sz)) - 1))
                kind = ("L", es, n)
        elif isinstance(obj, RawObj):
            seg, start = self._alloc(len(obj.body) // WORD)
            self.segs[seg][start * WORD:start * WORD + len(obj.body)] = obj.body
            kind = obj.kind
        else:
            raise TypeError(f"cannot encode {type(obj).__name__}")
        return seg, start, kind, kids

    @staticmethod
    def _near(kind, off):
        if kind[0] == "S":
            _, dw, pc = kind
            if dw == 0 and pc == 0:
                off = -1  # a zero-sized struct must not look like null
            return struct_ptr(off, dw, pc)
        _, es, n = kind
        return list_ptr(off, es, n)

    def _point(self, pseg, ppos, tseg, tstart, kind, far=None):
        """Write at (pseg, ppos) a pointer to the object at (tseg, tstart)."""
        if far is None:
            if pseg != tseg:
                far = self.far
            elif self.far_all:
                far = self.far
        if far is None:
            self._put(pseg, ppos, self._near(kind, tstart - (ppos + 1)))
        elif far == "single":
            pad = self._append(tseg, 1)
            self._put(tseg, pad, self._near(kind, tstart - (pad + 1)))
            self._put(pseg, ppos, far_ptr(pad, tseg))
        else:
            pad = self._append(pseg, 2)
            self._put(pseg, pad, far_ptr(tstart, tseg))
            self._put(pseg, pad + 1, self._near(kind, 0) if kind[0] == "L" else struct_ptr(0, kind[1], kind[2]))
            self._put(pseg, ppos, far_ptr(pad, pseg, double=True))

    def encode(self, root):
        self._alloc(1)  # the root pointer: first word of segment 0
        stack = [(0, 0, root)]
        while stack:
            pseg, ppos, obj = stack.pop()
            far = None
            if isinstance(obj, Far):
                far = "double" if obj.double else "single"
                obj = obj.obj
            if obj is None:
                continue
            if isinstance(obj, RawPtr):
                self._put(pseg, ppos, obj.word)
                continue
            if isinstance(obj, Cap):
                self._put(pseg, ppos, cap_ptr(obj.index))
                continue
            if isinstance(obj, RawPad):
                seg, start = self._alloc(len(obj.body) // WORD)
                self.segs[seg][start * WORD:start * WORD + len(obj.body)] = obj.body
                self._put(pseg, ppos, far_ptr(start, seg, obj.double))
                continue
            at = self.where.get(id(obj))
            if at is None:
                seg, start, kind, kids = self._layout(obj)
                at = (seg, start, kind)
                self.where[id(obj)] = at
                self.keep.append(obj)
                stack.extend(reversed(kids))
            self._point(pseg, ppos, at[0], at[1], at[2], far)
        return [bytes(s) for s in self.segs]


def encode(root, max_segment_words=None, far="single", far_all=False, trailing=b""):
    """Encode an object graph as a framed message (bytes)."""
    segs = Encoder(max_segment_words, far, far_all).encode(root)
    return frame(segs) + bytes(trailing)


def encode_segments(root, max_segment_words=None, far="single", far_all=False):
    """The segments (list of bytes) of an encoded object graph."""
    return Encoder(max_segment_words, far, far_all).encode(root)


def deep_copy(obj):
    """A copy of an object graph that shares nothing with the original (but
    keeps the original's internal sharing)."""
    memo = {}

    def cp(o):
        if o is None or isinstance(o, (RawPtr, Cap, RawObj, RawPad)):
            return o
        if id(o) in memo:
            return memo[id(o)]
        if isinstance(o, Far):
            return Far(cp(o.obj), o.double)
        if isinstance(o, Data):
            n = Data(o.value)
            memo[id(o)] = n
            return n
        if isinstance(o, Struct):
            n = Struct(o.data)
            memo[id(o)] = n
            n.ptrs = [cp(p) for p in o.ptrs]
            return n
        n = List(o.es, count=o.count, dw=o.dw, pc=o.pc)
        memo[id(o)] = n
        n.items = [cp(p) for p in o.items] if o.es in (ES_PTR, ES_COMPOSITE) else list(o.items)
        return n
    return cp(obj)


def walk(obj, fn, seen=None):
    """Call fn on every object reachable from obj, once each (iterative)."""
    seen = set() if seen is None else seen
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, Far):
            o = o.obj
        if o is None or id(o) in seen or isinstance(o, (RawPtr, Cap, RawObj, RawPad)):
            continue
        seen.add(id(o))
        fn(o)
        if isinstance(o, Struct):
            stack.extend(o.ptrs)
        elif isinstance(o, List) and o.es in (ES_PTR, ES_COMPOSITE):
            stack.extend(o.items)


def same(a, b):
    """Structural equality of two object graphs as a reader sees them (data
    and pointers; a missing field equals its zero default), ignoring where
    the objects are and whether they are shared."""
    stack = [(a, b)]
    seen = set()
    while stack:
        x, y = stack.pop()
        if isinstance(x, Far):
            x = x.obj
        if isinstance(y, Far):
            y = y.obj
        if (id(x), id(y)) in seen:
            continue
        seen.add((id(x), id(y)))
        if x is None or y is None:
            if x is not y:
                return False
            continue
        if type(x) is not type(y):
            return False
        if isinstance(x, Struct):
            if bytes(x.data).rstrip(b"\0") != bytes(y.data).rstrip(b"\0"):
                return False
            stack.extend((x.ptr(i), y.ptr(i)) for i in range(max(len(x.ptrs), len(y.ptrs))))
        elif isinstance(x, Data):
            if x.value != y.value:
                return False
        elif isinstance(x, List):
            if x.es != y.es or len(x) != len(y):
                return False
            if x.es in (ES_PTR, ES_COMPOSITE):
                stack.extend(zip(x.items, y.items))
            elif x.es != ES_VOID and x.items != y.items:
                return False
        elif isinstance(x, Cap):
            if x.index != y.index:
                return False
        elif isinstance(x, RawPtr):
            if x.word != y.word:
                return False
    return True


# --- the PuzzleFS schemas ------------------------------------------------------------
#
# Offsets from the generated readers (metadata_capnp.rs, manifest_capnp.rs):
#   Chr/Blk      data 2, ptrs 0: major u64[0], minor u64[1]
#   DirEntry     data 1, ptrs 1: ino u64[0], name ptr 0
#   Dir          data 1, ptrs 1: entries ptr 0, lookBelow bool bit 0
#   FileChunk    data 1, ptrs 1: blob ptr 0 (BlobRef), len u64[0]
#   BlobRef      data 2, ptrs 1: digest ptr 0, offset u64[0], compressed bool bit 64
#   Xattr        data 0, ptrs 2: key ptr 0, val ptr 1
#   InodeAdditional data 0, ptrs 2: xattrs ptr 0, symlinkTarget ptr 1
#   Inode        data 3, ptrs 2: ino u64[0], mode discriminant u16[4],
#                uid u32[3], gid u32[4], permissions u16[5], mode payload
#                ptr 0 (chr/dir/blk/file), additional ptr 1
#   InodeVector  data 0, ptrs 1: inodes ptr 0
#   VerityData   data 0, ptrs 2: digest ptr 0, verity ptr 1
#   Rootfs (B, metadata.capnp)  data 1, ptrs 2: metadatas ptr 0
#                (List(InodeVector)), fsVerityData ptr 1, manifestVersion u64[0]
#   Rootfs (A, manifest.capnp)  same layout, metadatas is List(BlobRef)

UNKNOWN, FIFO, CHR, DIR, BLK, FILE, LNK, SOCK, WHT = range(9)
KIND_NAMES = ("unknown", "fifo", "chr", "dir", "blk", "file", "lnk", "sock", "wht")


class _U64:
    def __init__(self, i):
        self.i = i

    def __get__(self, o, t=None):
        return o.s.u64(self.i)

    def __set__(self, o, v):
        o.s.set_u64(self.i, v)


class _U32(_U64):
    def __get__(self, o, t=None):
        return o.s.u32(self.i)

    def __set__(self, o, v):
        o.s.set_u32(self.i, v)


class _U16(_U64):
    def __get__(self, o, t=None):
        return o.s.u16(self.i)

    def __set__(self, o, v):
        o.s.set_u16(self.i, v)


class _Bool(_U64):
    def __get__(self, o, t=None):
        return o.s.bool(self.i)

    def __set__(self, o, v):
        o.s.set_bool(self.i, v)


class _Ptr(_U64):
    def __get__(self, o, t=None):
        return o.s.ptr(self.i)

    def __set__(self, o, v):
        o.s.set_ptr(self.i, v)


class _Bytes(_U64):
    """A Data field as Python bytes (None when null); assigning bytes makes
    a new Data object, assigning None clears the pointer."""

    def __get__(self, o, t=None):
        d = o.s.ptr(self.i)
        return d.value if isinstance(d, Data) else None

    def __set__(self, o, v):
        o.s.set_ptr(self.i, None if v is None else (v if isinstance(v, Data) else Data(v)))


class View:
    """A typed view of a Struct (self.s)."""

    SIZE = (0, 0)

    def __init__(self, s=None):
        self.s = s if s is not None else Struct(dw=self.SIZE[0], pc=self.SIZE[1])

    @classmethod
    def new(cls, **kw):
        v = cls()
        for k, val in kw.items():
            setattr(v, k, val)
        return v

    @classmethod
    def list(cls, views):
        """A composite List of the views' structs, with this type's size."""
        return List(ES_COMPOSITE, [v.s if isinstance(v, View) else v for v in views],
                    dw=cls.SIZE[0], pc=cls.SIZE[1])

    @classmethod
    def items(cls, lst):
        """Views of a decoded list (empty for None)."""
        if lst is None:
            return []
        if not isinstance(lst, List) or lst.es != ES_COMPOSITE:
            raise CapnpError(f"{cls.__name__} list is not a struct list")
        return [cls(s) for s in lst.items]


class Dev(View):
    SIZE = (2, 0)
    major = _U64(0)
    minor = _U64(1)


class DirEntry(View):
    SIZE = (1, 1)
    ino = _U64(0)
    name = _Bytes(0)


class Dir(View):
    SIZE = (1, 1)
    entries_ptr = _Ptr(0)
    look_below = _Bool(0)

    @property
    def entries(self):
        return DirEntry.items(self.entries_ptr)


class BlobRef(View):
    SIZE = (2, 1)
    digest = _Bytes(0)
    offset = _U64(0)
    compressed = _Bool(64)


class FileChunk(View):
    SIZE = (1, 1)
    blob_ptr = _Ptr(0)
    len = _U64(0)

    @property
    def blob(self):
        b = self.blob_ptr
        return BlobRef(b) if isinstance(b, Struct) else None


class Xattr(View):
    SIZE = (0, 2)
    key = _Bytes(0)
    val = _Bytes(1)


class InodeAdditional(View):
    SIZE = (0, 2)
    xattrs_ptr = _Ptr(0)
    symlink_target = _Bytes(1)

    @property
    def xattrs(self):
        return Xattr.items(self.xattrs_ptr)


class Inode(View):
    SIZE = (3, 2)
    ino = _U64(0)
    kind = _U16(4)  # the mode union's discriminant
    uid = _U32(3)
    gid = _U32(4)
    permissions = _U16(5)
    payload = _Ptr(0)  # Chr/Blk struct, Dir struct or List(FileChunk)
    additional_ptr = _Ptr(1)

    @property
    def dir(self):
        return Dir(self.payload) if isinstance(self.payload, Struct) else None

    @property
    def dev(self):
        return Dev(self.payload) if isinstance(self.payload, Struct) else None

    @property
    def chunks(self):
        return FileChunk.items(self.payload)

    @property
    def additional(self):
        a = self.additional_ptr
        return InodeAdditional(a) if isinstance(a, Struct) else None

    def ensure_additional(self):
        if self.additional is None:
            self.additional_ptr = InodeAdditional().s
        return self.additional

    def set_kind(self, kind, payload=None):
        self.kind = kind
        self.payload = payload

    def __repr__(self):
        k = KIND_NAMES[self.kind] if self.kind < len(KIND_NAMES) else self.kind
        return f"Inode({self.ino}, {k})"


class InodeVector(View):
    SIZE = (0, 1)
    inodes_ptr = _Ptr(0)

    @property
    def inodes(self):
        return Inode.items(self.inodes_ptr)


class VerityData(View):
    SIZE = (0, 2)
    digest = _Bytes(0)
    verity = _Bytes(1)


class RootfsB(View):
    """Generation B rootfs (metadata.capnp): inode vectors inline."""

    SIZE = (1, 2)
    metadatas_ptr = _Ptr(0)
    verity_ptr = _Ptr(1)
    manifest_version = _U64(0)

    @property
    def layers(self):
        return InodeVector.items(self.metadatas_ptr)

    @property
    def verity(self):
        return VerityData.items(self.verity_ptr)


class RootfsA(RootfsB):
    """Generation A rootfs (manifest.capnp): layers are BlobRefs to blobs
    holding one InodeVector message each."""

    @property
    def layers(self):
        return BlobRef.items(self.metadatas_ptr)


def file_size(inode):
    """Sum of a file inode's chunk lengths (unbounded int)."""
    return sum(c.len for c in inode.chunks)


if __name__ == "__main__":
    import sys
    # capnp_codec.py FILE: print the object graph's outline
    root, msg = decode(open(sys.argv[1], "rb").read())
    print(f"{len(msg.segments)} segment(s), {sum(msg.nwords(i) for i in range(len(msg.segments)))} words,"
          f" {len(msg.trailing)} trailing bytes")

    def show(o, ind=0, depth=0):
        pad = "  " * ind
        if depth > 12:
            print(pad + "...")
            return
        if isinstance(o, Struct):
            print(f"{pad}{o!r} data={bytes(o.data).hex()}")
            for p in o.ptrs:
                show(p, ind + 1, depth + 1)
        elif isinstance(o, List) and o.es in (ES_PTR, ES_COMPOSITE):
            print(f"{pad}{o!r}")
            for p in o.items[:8]:
                show(p, ind + 1, depth + 1)
            if len(o.items) > 8:
                print(f"{pad}  ... {len(o.items) - 8} more")
        else:
            print(f"{pad}{o!r}")
    show(root)
