"""Values for a JSON schema, taken from a user's words: what the rule-based responder
(:mod:`.responder`) sends as a tool call's arguments.

:class:`TextValues` reads a message once (its words, quoted strings, capitalised words and
identifiers, the words after "in/for/of/at...", and its numbers) and hands out values for
properties, each value used once. Deterministic; no model, no randomness.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, NamedTuple

__all__ = ["TextValues", "words_of"]

_STOP = frozenset("""
a an the and or but if then else of in on at to for from by with about into over under near
is are was were be been being am do does did done have has had i me my we our us you your
it its this that these those what which who whom whose when where why how please can could
would should will shall may might must tell show give let get set find look up fetch
retrieve check run make use call current specific specified given much many some any all
each every there here not no yes than so as also just only whats there's it's i'm
""".split())
_PREPOSITIONS = frozenset("in for of at to from near about on named called".split())
_PLACE_PREPOSITIONS = frozenset("in at to from near".split())
_ARTICLES = frozenset("the a an my our your this that".split())
_PLACE_NAMES = frozenset("location city place country region town destination where address area".split())
_FREE_TEXT_NAMES = frozenset("""query q text question message prompt search input content title subject
summary description body comment""".split())
_ORIGIN_WORDS = frozenset("origin source departure start sender from".split())  # "from X"
_TARGET_WORDS = frozenset("destination target arrival recipient to".split())  # "to X"
_MAX_DEPTH = 8
_MAX_TEXT = 4000  # characters of a message read (a pasted page stays cheap)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_TOKEN = re.compile(r"\w[\w'’-]*")
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|`([^`\n]+)`|(?:(?<=\s)|^)\'([^\'\n]+)\'(?=[\s.,;:!?]|$)')
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\bhttps?://[^\s\"'<>]*[^\s\"'<>.,;:!?)]")  # e-mail, URL
_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?(?![\w-])")


def _normal(word: str) -> str:
    word = word.lower().strip("'’-")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words_of(text: str) -> list[str]:
    """The meaningful words of ``text``: lower case, singular-ish, without stop words,
    single letters or a possessive's ``'s`` ("what's" is "what", not "what" and "s")."""
    found = (_normal(re.sub(r"['’]s$", "", w, flags=re.IGNORECASE)) for w in _WORD.findall(text))
    return [w for w in found if len(w) > 1 and w not in _STOP]


class _Candidate(NamedTuple):
    text: str
    start: int
    kind: int  # 3 quoted, 2 capitalised or an identifier, 1 a plain word after a preposition
    place: bool  # after in/at/to/from/near
    preposition: str | None  # the word just before it, when a preposition ("from", "to"...)
    neighbours: frozenset[str]  # the meaningful words just before and after it


class _Number(NamedTuple):
    value: float
    integral: bool
    start: int
    neighbours: frozenset[str]


class TextValues:
    """The values a message offers, handed out to schema properties one at a time."""

    def __init__(self, text: str, exclude: Iterable[str] = ()) -> None:
        self.text = text[:_MAX_TEXT] if isinstance(text, str) else ""
        self.exclude = {_normal(w) for w in exclude}
        self.used: set[int] = set()  # starts of the candidates and numbers handed out
        tokens = [(m.group().strip("'’-"), m.start()) for m in _TOKEN.finditer(self.text)]
        tokens = [(t, s) for t, s in tokens if t]
        self.words = [_normal(t) for t, _ in tokens]
        self.candidates = self._candidates(tokens)
        self.numbers = [
            _Number(float(m.group()), "." not in m.group(), m.start(), self._neighbours(tokens, m.start()))
            for m in _NUMBER.finditer(self.text)]

    # -- reading the text ------------------------------------------------------------------

    def _neighbours(self, tokens: list[tuple[str, int]], start: int, end: int | None = None) -> frozenset[str]:
        end = start if end is None else end
        before = [_normal(t) for t, s in tokens if s < start and _normal(t) not in _ARTICLES]
        after = [_normal(t) for t, s in tokens if s > end and _normal(t) not in _ARTICLES]
        return frozenset(w for w in (before[-1:] + after[:1]) if w not in _STOP)

    def _candidates(self, tokens: list[tuple[str, int]]) -> list[_Candidate]:
        found: list[_Candidate] = []
        quoted_spans = []
        for m in _QUOTED.finditer(self.text):
            value = next(g for g in m.groups() if g is not None).strip()
            quoted_spans.append((m.start(), m.end()))
            if value:
                found.append(_Candidate(value, m.start(), 3, False, None,
                                        self._neighbours(tokens, m.start(), m.end())))
        for m in _ADDRESS.finditer(self.text):  # one value, not the words between its dots
            if not any(a <= m.start() < b for a, b in quoted_spans):
                quoted_spans.append((m.start(), m.end()))
                found.append(_Candidate(m.group(), m.start(), 2, False, None,
                                        self._neighbours(tokens, m.start(), m.end())))
        run: list[tuple[str, int]] = []

        def close_run() -> None:
            if run:
                start, end = run[0][1], run[-1][1] + len(run[-1][0])
                prep = self._preposition_before(tokens, start)
                found.append(_Candidate(self.text[start:end], start, 2, prep in _PLACE_PREPOSITIONS, prep,
                                        self._neighbours(tokens, start, end - 1)))
                run.clear()

        for i, (token, start) in enumerate(tokens):
            if any(a <= start < b for a, b in quoted_spans):
                close_run()
                continue
            word = _normal(token)
            proper = (token[0].isupper() or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token)))
            if proper and word not in _STOP and word not in self.exclude:
                if run and self.text[run[-1][1] + len(run[-1][0]):start].strip():
                    close_run()  # not adjacent: "London, Paris" are two
                run.append((token, start))
                continue
            close_run()
            prep = self._preposition_before(tokens, start)
            if (prep is not None and word not in _STOP and word not in self.exclude
                    and not _NUMBER.fullmatch(token)):
                found.append(_Candidate(token, start, 1, prep in _PLACE_PREPOSITIONS, prep,
                                        self._neighbours(tokens, start)))
        close_run()
        return sorted(found, key=lambda c: c.start)

    @staticmethod
    def _preposition_before(tokens: list[tuple[str, int]], start: int) -> str | None:
        before = [t.lower() for t, s in tokens if s < start]
        while before and before[-1] in _ARTICLES:
            before.pop()
        return before[-1] if before and before[-1] in _PREPOSITIONS else None

    def has_values(self) -> bool:
        """Whether the text offers any quoted, capitalised, identifier or number value."""
        return any(c.kind >= 2 for c in self.candidates) or bool(self.numbers)

    def mentions(self, value: object) -> int | None:
        """Where ``value`` (an enum member) appears in the text as whole words, if it does."""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value) == "":
            return None
        m = re.search(r"(?<!\w)" + re.escape(str(value).lower()) + r"(?!\w)", self.text.lower())
        return m.start() if m else None

    # -- handing out values -----------------------------------------------------------------

    def object_for(self, schema: Mapping[str, Any], root: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
        """An object for an object ``schema`` (``root`` resolves local ``$ref``)."""
        schema = _resolve(schema, root, depth)
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or depth > _MAX_DEPTH:
            return {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        built: dict[str, Any] = {}
        for name, prop in properties.items():
            if not isinstance(name, str):
                continue
            found, value = self._value_for(name, _resolve(prop, root, depth), root, name in required, depth)
            if found:
                built[name] = value
        return built

    def _value_for(self, name: str, schema: Mapping[str, Any], root: Mapping[str, Any], required: bool,
                   depth: int) -> tuple[bool, Any]:
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            mentioned = [(at, i) for i, v in enumerate(enum) if (at := self.mentions(v)) is not None]
            if mentioned:
                return True, enum[min(mentioned)[1]]
            if "default" in schema:
                return True, schema["default"]
            return required, enum[0]
        if "const" in schema:
            return True, schema["const"]
        kind = _type_of(schema)
        keys = set(words_of(re.sub(r"[_\-.]+", " ", name)))
        description = schema.get("description")
        if isinstance(description, str):
            keys |= set(words_of(description))
        if "default" in schema or not required:
            # an optional number the text states next to its name ("for 2 passengers")
            near = self._number(schema, keys, kind == "integer", near_only=True) \
                if kind in ("integer", "number") else None
            if near is not None:
                return True, near
            return ("default" in schema), schema.get("default")
        if kind in ("integer", "number"):
            return True, self._number(schema, keys, kind == "integer")
        if kind == "boolean":
            return True, False
        if kind == "null":
            return True, None
        if kind == "array":
            items = schema.get("items")
            min_items = schema.get("minItems")
            item = _resolve(items, root, depth + 1)
            if (isinstance(min_items, int) and min_items > 0) or (
                    _type_of(item) == "object" and item.get("properties") and self.has_values()):
                # one item: what minItems asks, or an object the text describes ("3 of SKU-1")
                return True, [self._value_for(name, item, root, True, depth + 1)[1]]
            return True, []
        if kind == "object":
            return True, self.object_for(schema, root, depth + 1)
        return True, self._string(name, keys)

    def _number(self, schema: Mapping[str, Any], keys: set[str], integer: bool,
                near_only: bool = False) -> float | int | None:
        """The first unused number, those next to a word of ``keys`` first; with
        ``near_only``, only those (``None`` when there is none)."""
        usable = [n for n in self.numbers if n.start not in self.used and (n.integral or not integer)
                  and (n.neighbours & keys or not near_only)]
        if near_only and not usable:
            return None
        usable.sort(key=lambda n: (not (n.neighbours & keys), n.start))
        if usable:
            self.used.add(usable[0].start)
            value: float = usable[0].value
        else:
            minimum = schema.get("minimum")
            value = minimum if isinstance(minimum, (int, float)) and not isinstance(minimum, bool) else 0
        maximum = schema.get("maximum")
        if isinstance(maximum, (int, float)) and not isinstance(maximum, bool):
            value = min(value, maximum)
        return int(value) if integer else value

    def _string(self, name: str, keys: set[str]) -> str:
        if name.lower() in _FREE_TEXT_NAMES:
            quoted = [c for c in self.candidates if c.kind == 3 and c.start not in self.used]
            if quoted:
                return quoted[0].text
            _, colon, after = self.text.partition(":")  # "open a ticket: the printer is on fire"
            return " ".join((after if colon and after.strip() else self.text).split())
        place = name.lower() in _PLACE_NAMES or bool(keys & _PLACE_NAMES)
        parts = set(re.split(r"[_\-.\s]+", name.lower())) | keys
        wants = {"from"} if parts & _ORIGIN_WORDS else {"to"} if parts & _TARGET_WORDS else set()
        best: _Candidate | None = None
        best_score = -1
        for c in self.candidates:
            if c.start in self.used or _normal(c.text) in keys:
                continue
            score = c.kind + (3 if c.neighbours & keys else 0) + (2 if place and c.place else 0)
            score += 3 if c.preposition in wants else 0  # "from Paris" for an origin
            score += 3 if set(words_of(c.text)) & keys else 0  # "Main Street" for a street
            score -= 2 if place and any(ch.isdigit() for ch in c.text) else 0  # "SKU-1" is no city
            if score > best_score:
                best, best_score = c, score
        if best is None:
            return ""
        self.used.add(best.start)
        return best.text


def _resolve(schema: object, root: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` followed and an ``anyOf``/``oneOf`` narrowed to its
    first branch that is not ``null``; ``{}`` for anything else."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target: object = root
        if not ref.startswith("#"):
            return {}
        for part in (p for p in ref[1:].split("/") if p):
            target = target.get(part) if isinstance(target, Mapping) else None
        return _resolve(target, root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                resolved = _resolve(branch, root, depth + 1)
                if resolved and _type_of(resolved) != "null":
                    merged = {k: v for k, v in schema.items() if k != key}
                    return {**resolved, **merged}
            return {k: v for k, v in schema.items() if k != key}
    return schema


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if isinstance(schema.get("properties"), Mapping) else "string"
