"""Plausible, seed-aware text for the upstream simulator.

The simulator has to reproduce what the seed documents show, not merely return text:

* the same prompt at temperature 0 gives the same text;
* the same prompt at temperature > 0 without a seed gives texts that share an opening
  and then diverge (earlier for hotter temperatures);
* the same prompt with the same seed gives the same text "almost always": when the
  simulator's ``seed_drift`` triggers, the text keeps its opening and changes later on,
  and longer answers drift more often (``greedy_drift`` does the same for temperature-0
  requests without a seed, which real services also fail to repeat now and then);
* the shape of that drift is the one published measurements show: answers agree on a
  prefix, then may part, with a chance that grows with length. The chance is a per-word
  hazard after ``drift_prefix`` words, scaled so that ``seed_drift`` is the chance for
  50 words past the prefix (:func:`divergence_chance`). With no prefix (the default) the
  parting point is drawn among the last 40% of the visible words; with one it follows
  the hazard, so most answers part soon after the prefix (Thinking Machines, 2025: 1,000
  temperature-0 runs identical for their first ~102 tokens, then 80 distinct endings);
* a new ``system_fingerprint`` (a backend change) changes seeded texts slightly: same
  opening, different ending.

How: a text is a sequence of *choice points* (which template, which phrase for each
slot). Each choice is drawn from one of several random streams, each taking over at a
switch point: the *greedy* stream (seeded by the prompt alone) from the start, then the
*sample* stream (seeded by the body incl. ``seed``, or fresh entropy when unseeded), the
*fingerprint* stream, and the *drift* stream. Every stream is drawn at every point so
they stay aligned, and the choice at a switch point is forced to differ from what the
previous stream would have chosen, so a switch always shows up in the visible text.
Switch points are picked by word position: the sample switch early (earlier when
hotter), fingerprint and drift switches in the last 40% of the visible words.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

# Body fields that only shape the transport or cut the text: they are left out of the
# stream seeds, so a streamed and a non-streamed request with the same seed give the same
# text. (max_tokens still matters: switch points are chosen inside the visible words so
# that drift and a new fingerprint always show, so a different max_tokens may give a
# different text, as the Azure page warns: keep every other parameter equal too.)
PRESENTATION_FIELDS = frozenset(
    [
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "user",
        "metadata",
        "store",
        "logprobs",
        "top_logprobs",
        "echo",
        "suffix",
        "parallel_tool_calls",
    ]
)
# Fields that pick *how* to sample rather than *what* was asked.
SAMPLING_FIELDS = frozenset({"seed", "temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias", "best_of"})
LATE_FRACTION = 0.6  # fingerprint and drift switches happen after 60% of the visible words
DRIFT_REFERENCE_WORDS = 50  # seed_drift is the drift chance of an answer this long

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "me",
        "my",
        "i",
        "you",
        "your",
        "we",
        "our",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "with",
        "about",
        "how",
        "why",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "please",
        "can",
        "could",
        "would",
        "should",
        "will",
        "tell",
        "write",
        "create",
        "give",
        "make",
        "explain",
        "describe",
        "show",
        "story",
        "tale",
        "short",
        "long",
        "some",
        "any",
        "do",
        "does",
        "did",
        "sentence",
        "sentences",
        "answer",
        "answers",
        "always",
        "produce",
        "there",
        "their",
        "as",
        "at",
        "by",
        "from",
        "into",
    ]
)
_VERBS = frozenset(
    [
        "began",
        "begin",
        "begins",
        "started",
        "start",
        "starts",
        "formed",
        "form",
        "works",
        "work",
        "came",
        "come",
        "happened",
        "was",
        "is",
        "are",
    ]
)
_LEADING = frozenset(["what's", "whats", "who's", "hey", "hi", "so", "briefly"])
_BREAKS = frozenset(["in", "using", "with", "for", "please", "and", "that", "so", "because"])
_NUMBERS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])}

# --- the word bank ------------------------------------------------------------------
# A slot is "{name}"; "{T}" is the topic. Slots in _STICKY are chosen once per text.
_BANK: dict[str, list[str]] = {
    "lush": ["lush", "misty", "quiet", "ancient", "green", "snowy"],
    "forests": ["forests", "valleys", "mountains", "bamboo groves", "hills"],
    "region": ["the Himalayas", "Nepal", "the eastern mountains", "a faraway kingdom", "the northern woods"],
    "curious": ["curious", "playful", "gentle", "clever", "shy", "brave", "little"],
    "Name": ["Pabu", "Miko", "Tashi", "Lumi", "Kiri", "Bodhi"],
    "days": ["days", "mornings", "afternoons", "evenings"],
    "frolicking": [
        "frolicking among the trees",
        "napping on sunny branches",
        "chasing fireflies",
        "exploring hidden trails",
        "collecting shiny pebbles",
    ],
    "stumbled": ["stumbled upon", "discovered", "came across", "found"],
    "grove": ["a hidden grove", "a secret clearing", "an old hollow tree", "a sparkling stream"],
    "sweetest": ["the sweetest bamboo", "the juiciest berries", "the softest moss", "the brightest flowers"],
    "twist": [
        "which he decided to keep as his secret snack spot",
        "but it was guarded by a mischievous monkey",
        "and he could not wait to tell his friends",
        "though something about it felt strangely familiar",
    ],
    "morning": ["morning", "evening", "afternoon", "night"],
    "crisp": ["crisp", "rainy", "windy", "golden", "foggy"],
    "noticed": ["noticed", "heard", "spotted", "sensed"],
    "glow": ["a strange glow", "a faint melody", "a trail of tiny footprints", "a rustling in the leaves"],
    "beyond": ["beyond the old oak tree", "near the river bend", "at the edge of the forest", "high above the canopy"],
    "friend": ["a wise old owl", "a lost baby deer", "a grumpy badger", "a chatty magpie"],
    "offered": ["offered", "shared", "whispered", "revealed"],
    "riddle": ["a riddle", "a secret", "some advice", "a warning"],
    "wits": ["cleverness", "patience", "kindness", "quick thinking"],
    "bravery": ["a dash of bravery", "a little luck", "the help of his friends", "a steady heart"],
    "outwitted": ["outwitted", "befriended", "surprised", "helped"],
    "rival": ["the mischievous monkey", "the grumpy badger", "the noisy crows", "the sly fox"],
    "friends": ["fellow pandas", "forest friends", "neighbours", "family"],
    "discovery": ["delightful discovery", "little secret", "brave adventure", "kind gesture"],
    "attract": ["attract", "bring together", "delight", "inspire"],
    "creatures": ["other forest creatures", "a band of fellow pandas", "the whole valley", "curious travellers"],
    "ending": [
        "unexpected friendships and adventures",
        "the most enchanting feasts the forest had ever seen",
        "a celebration under the stars",
        "a tradition that lasted for generations",
    ],
    "known": ["throughout the forest", "across the valley", "in every corner of the woods"],
    "bravest": ["the bravest", "the kindest", "the cleverest", "the most generous"],
    "learned": ["learned", "discovered", "understood", "realized"],
    "treasures": ["the greatest treasures", "the best adventures", "the sweetest moments"],
    "shared": ["the ones we share", "found close to home", "the ones shared with friends"],
    # origin stories
    "darkness": ["darkness and silence", "a vast emptiness", "darkness and stillness", "an endless void"],
    "before": ["before there was time", "long before the existence of time itself", "before time even existed"],
    "suddenly": ["suddenly", "without warning", "in a single instant", "quietly"],
    "speck": [
        "a tiny point of light",
        "a tiny speck of unimaginable energy",
        "a single spark",
        "an infinitely dense point of energy",
    ],
    "vast": ["vast", "silent", "boundless", "cold"],
    "energy": ["energy and matter", "potential", "elements", "forces"],
    "entire": ["entire", "whole", "observable", "growing"],
    "expand": ["began to expand rapidly", "unfolded in every direction", "stretched outward", "burst into being"],
    "cooled": ["cooled", "grew", "stretched", "calmed"],
    "atoms": ["the first atoms", "tiny particles", "hydrogen and helium", "simple elements"],
    "clouds": ["gathered into vast clouds", "drifted through the darkness", "clumped together", "spread across space"],
    "gravity": ["Gravity", "Time", "An invisible force"],
    "slowly": ["slowly", "patiently", "gently", "steadily"],
    "stars": ["the first stars", "brilliant new suns", "the earliest galaxies", "glowing nurseries of light"],
    "heavy": ["heavier elements like carbon and oxygen", "the ingredients of planets", "iron, carbon and nitrogen"],
    "written": ["a story that is still being written today", "one that continues to unfold", "a tale without an end"],
    # explanations
    "topic_is": [
        "a fascinating subject",
        "an important idea",
        "a topic worth understanding",
        "a question with a rich answer",
    ],
    "studied": [
        "has been studied for a long time",
        "touches many parts of everyday life",
        "is easier than it first seems",
        "rewards a closer look",
    ],
    "core": ["core", "heart", "simplest level"],
    "ideas": ["a few key ideas", "some simple principles", "a handful of building blocks", "a clear structure"],
    "first": ["First", "To begin with", "Most importantly", "Before anything else"],
    "understand": ["understand", "look at", "consider", "break down"],
    "pieces": [
        "the basic building blocks",
        "the main parts involved",
        "how the pieces fit together",
        "the underlying causes",
    ],
    "practice": ["In practice", "In everyday life", "For most people", "In real projects"],
    "rely": ["rely on", "come across", "think about", "make use of"],
    "problems": [
        "to solve everyday problems",
        "in surprising ways",
        "more often than they notice",
        "without realizing it",
    ],
    "experts": ["Experts", "Teachers", "Practitioners", "Researchers"],
    "point": ["often point out", "like to stress", "usually agree", "frequently note"],
    "details": ["small details", "careful observation", "good examples", "clear definitions"],
    "difference": ["make a big difference", "matter more than expected", "help the most", "save a lot of time"],
    "short": ["In short", "To sum up", "Overall", "All in all"],
    "rewards": ["rewards", "invites", "deserves", "repays"],
    "curiosity": ["curiosity and patience", "a closer look", "practice", "an open mind"],
}
_STICKY = frozenset({"Name", "region", "curious", "entire"})

_STORY = {
    "open": [
        "In the {lush} {forests} of {region}, a {curious} {T} named {Name} spent his {days} {frolicking}.",
        "Once upon a time, in the {lush} {forests} of {region}, there lived a {curious} {T} named {Name}.",
        "Deep in the {lush} {forests} of {region}, a {curious} {T} called {Name} loved {frolicking}.",
    ],
    "middle": [
        "One day, {Name} {stumbled} {grove} filled with {sweetest} he had ever tasted, {twist}.",
        "One {crisp} {morning}, {Name} {noticed} {glow} {beyond}.",
        "Along the way, {Name} met {friend} who {offered} {riddle} about the path ahead.",
        "With {wits} and {bravery}, {Name} {outwitted} {rival} and shared the bounty with his {friends}.",
        "Curious as ever, {Name} followed {glow} {beyond}, his heart beating fast.",
    ],
    "close": [
        "Little did he know, his {discovery} would soon {attract} {creatures}, leading to {ending}.",
        "From that day on, {Name} was known {known} as {bravest} {T} of all.",
        "And so, {Name} {learned} that {treasures} are {shared}.",
    ],
}
_ORIGIN = {
    "open": [
        "In the beginning, there was nothing but {darkness}.",
        "Once upon a time, {before}, there was nothing but {darkness}.",
    ],
    "middle": [
        "Then, {suddenly}, {speck} appeared.",
        "In this {vast} emptiness, there existed {speck}.",
        "This point contained all the {energy} that would eventually form the {entire} {T}.",
        "With a massive explosion known as the Big Bang, space and time {expand}.",
        "As the young {T} {cooled}, {atoms} formed and {clouds}.",
        "{gravity} {slowly} pulled these clouds together, igniting {stars}.",
        "Inside those stars, {heavy} were forged in the heat of nuclear fusion.",
    ],
    "close": [
        "And so, the story of the {entire} {T} began, {written}.",
        "That is how the {T} began: from {darkness} to {stars}, {written}.",
    ],
}
_ANSWER = {
    "open": [
        "{T} is {topic_is} that {studied}.",
        "Put simply, {T} is {topic_is} that {studied}.",
    ],
    "middle": [
        "At its {core}, {T} involves {ideas} that are easy to grasp once broken down.",
        "{first}, it helps to {understand} {pieces}.",
        "{practice}, people {rely} {T} {problems}.",
        "{experts} {point} that {details} {difference}.",
        "A good way to learn more about {T} is to {understand} {pieces} one at a time.",
    ],
    "close": [
        "{short}, {T} {rewards} {curiosity}.",
        "{short}, understanding {T} {rewards} {curiosity}.",
    ],
}
_KINDS = {"story": _STORY, "origin": _ORIGIN, "answer": _ANSWER}
_NATURAL_LENGTH = {"story": [5, 6, 7], "origin": [6, 7, 8], "answer": [4, 5, 6]}


def _fold(value: Any) -> Any:
    """Sorted keys, integral floats as ints: the same prompt always hashes the same.

    The simulator's own copy of this folding (it equals key v1's ``canonical`` today):
    the text a seed draws must not change when the proxy's cache key does.
    """
    if isinstance(value, dict):
        return {k: _fold(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_fold(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _stable_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def stable_hash(*parts: Any) -> int:
    """A 64-bit integer from any JSON-able values (Python's hash() is salted per process)."""
    data = _stable_json([_fold(p) for p in parts]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


# --- reading the prompt ---------------------------------------------------------------


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message; content may be a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


def extract_topic(prompt: str) -> str:
    """The noun phrase a prompt is about: "Create a story about red panda." -> "red panda"."""
    text = re.sub(r"[^\w\s'-]", " ", prompt).strip()
    about = re.search(r"\b(?:about|of|on|explain|describe|is|are)\s+(.+)$", text, re.IGNORECASE)
    words = (about.group(1) if about else text).split()
    while words and words[0].lower() in _STOP | _LEADING:
        words.pop(0)
    kept: list[str] = []
    for word in words:
        if word.lower() in _VERBS | _BREAKS:
            break
        kept.append(word)
    while kept and kept[-1].lower() in _STOP:
        kept.pop()
    return " ".join(kept[:4]) or "this topic"


def sentence_count(messages: Sequence[Mapping[str, Any]]) -> int | None:
    """N when a message asks for "3-sentence answers" / "in two sentences", else None."""
    pattern = r"\b(\d{1,2}|" + "|".join(_NUMBERS) + r")[\s-]+(?:short\s+|brief\s+)?sentences?\b"
    for message in messages:
        if message.get("role") in ("system", "developer", "user"):
            found = re.search(pattern, message_text(message), re.IGNORECASE)
            if found:
                word = found.group(1).lower()
                return max(1, min(40, _NUMBERS[word] if word in _NUMBERS else int(word)))
    return None


def text_kind(prompt: str) -> str:
    low = prompt.lower()
    if re.search(r"\bhow\b.*\b(began|begin|start|started|form|formed|created|came to be)\b", low) or "origin" in low:
        return "origin"
    if re.search(r"\b(story|tale|fable|poem)\b", low):
        return "story"
    return "answer"


# --- rendering with switchable random streams -----------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """A choice point: its index, the word position where its phrase starts, how many options
    (1 when a switch there would not show at that position)."""

    index: int
    pos: int
    options: int


class _Chooser:
    """Draws every choice from all streams (so they stay aligned) and uses the active one."""

    def __init__(self, plan: Sequence[tuple[int, int]]) -> None:
        self.plan = sorted(plan, key=lambda s: s[0])
        self.rngs = [Random(seed) for _, seed in self.plan]
        self.points: list[Point] = []

    def pick(self, options: Sequence[str], pos: int, switchable: bool = True) -> str:
        """One choice; ``switchable=False`` for choices that do not show where they are made."""
        index = len(self.points)
        self.points.append(Point(index, pos, len(options) if switchable else 1))
        draws = [rng.randrange(len(options)) for rng in self.rngs]
        active = max(k for k, (start, _) in enumerate(self.plan) if start <= index)
        choice = draws[active]
        if active > 0 and self.plan[active][0] == index and len(options) > 1:
            previous = draws[active - 1]
            if choice == previous:  # a switch must be visible: never the previous stream's pick
                choice = (previous + 1 + draws[active] % (len(options) - 1)) % len(options)
        return options[choice]


@dataclass
class Spec:
    """What to write: kind, topic and sentence count, from the messages."""

    kind: str
    topic: str
    sentences: int | None
    preface: str = ""

    @classmethod
    def from_messages(cls, messages: Sequence[Mapping[str, Any]]) -> Spec:
        prompt = last_user_text(messages)
        preface = ""
        if messages and messages[-1].get("role") == "tool":  # answer a tool result
            result = " ".join(message_text(messages[-1]).split()[:20])
            preface = f"According to the tool, the result is: {result}." if result else ""
        return cls(text_kind(prompt), extract_topic(prompt), sentence_count(messages), preface)


def _fill(template: str, spec: Spec, chooser: _Chooser, sticky: dict[str, str], pos: int) -> str:
    out: list[str] = []
    for literal, slot in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        out.append(literal)
        if not slot:
            continue
        if slot == "T":
            value = spec.topic
        elif slot in sticky:
            value = sticky[slot]
        else:
            prefix = "".join(out)  # the word this phrase starts in (it may continue one)
            at = pos + len(prefix.split()) - (1 if prefix and not prefix[-1].isspace() else 0)
            value = chooser.pick(_BANK[slot], at)
            if slot in _STICKY:
                sticky[slot] = value
        out.append(value)
    return "".join(out)


def _polish(sentence: str) -> str:
    sentence = re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", sentence)
    return sentence[:1].upper() + sentence[1:]


def render(spec: Spec, plan: Sequence[tuple[int, int]]) -> tuple[str, list[Point]]:
    """The text a plan of streams produces, and its choice points."""
    chooser = _Chooser(plan)
    bank = _KINDS[spec.kind]
    count = spec.sentences or int(chooser.pick([str(n) for n in _NATURAL_LENGTH[spec.kind]], 0, switchable=False))
    sentences = [spec.preface] if spec.preface else []
    pos = len(spec.preface.split())
    sticky: dict[str, str] = {}
    middles, after = bank["middle"], -1
    for i in range(count):
        if i == 0:
            pool = bank["open"]
        elif i == count - 1:
            pool = bank["close"]
        else:  # middles keep their narrative order: pick one after the last, leaving room
            room = len(middles) - (count - 2 - i)
            pool = middles[after + 1 : max(after + 2, room)] if after + 1 < room else middles
        template = chooser.pick(pool, pos)
        if i and i < count - 1:
            after = middles.index(template)
        sentence = _polish(_fill(template, spec, chooser, sticky, pos))
        sentences.append(sentence)
        pos += len(sentence.split())
    paragraphs = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    return ("\n\n" if len(sentences) > 4 else " ").join(paragraphs), chooser.points


# --- the public entry point -----------------------------------------------------------


@dataclass
class TextRequest:
    """A request reduced to what decides its text."""

    messages: list[dict[str, Any]]
    temperature: float
    seeded: bool
    prompt_key: Any  # the body without sampling and presentation fields: what was asked
    sampling_key: Any  # the body without presentation fields, seed included
    max_words: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any], messages: list[dict[str, Any]], max_words: int | None) -> TextRequest:
        kept = {k: v for k, v in body.items() if v is not None and k not in PRESENTATION_FIELDS}
        temperature = body.get("temperature")
        return cls(
            messages=messages,
            temperature=1.0 if temperature is None else float(temperature),
            seeded=body.get("seed") is not None,
            prompt_key={k: v for k, v in kept.items() if k not in SAMPLING_FIELDS},
            sampling_key=kept,
            max_words=max_words,
        )


def _candidates(points: Iterable[Point], visible: int, lo: float, hi: float, after: int = -1, taken: Iterable[int] = ()) -> list[Point]:
    """Choice points where a switch would show: several options, inside [lo, hi) of the visible words."""
    busy = set(taken)  # one switch per point, so "differs from the previous stream" stays exact
    return [p for p in points if p.options > 1 and p.index > after and p.index not in busy and lo * visible <= p.pos < max(1, hi * visible)]


def _visible(text: str, max_words: int | None) -> int:
    words = len(text.split())
    return min(words, max_words) if max_words else words


def divergence_chance(rate: float, visible: int, prefix: int = 0) -> float:
    """The chance an answer of ``visible`` words leaves the common text.

    A constant per-word hazard after the ``prefix`` words every answer shares, scaled so
    that ``rate`` is the chance over :data:`DRIFT_REFERENCE_WORDS` words past the prefix:
    ``1 - (1 - rate) ** ((visible - prefix) / 50)``. Longer answers drift more; an answer
    no longer than the prefix never does.
    """
    span = max(0, visible - prefix)
    return 1 - float((1 - min(1.0, rate)) ** (span / DRIFT_REFERENCE_WORDS))


def _hazard_offset(draw: float, chance: float, span: int) -> float:
    """Where, past the prefix, a drift drawn as ``draw < chance`` starts: the inverse of
    the hazard's distribution, so the same draw decides whether and where."""
    if chance >= 1.0:
        return 0.0
    return span * math.log(1 - draw) / math.log(1 - chance)


def generate(
    req: TextRequest,
    *,
    fingerprint: str,
    choice_index: int,
    entropy: Random,
    seed_drift: float,
    greedy_drift: float = 0.0,
    drift_prefix: int = 0,
) -> str:
    """The full (untruncated) text for one choice; see the module docstring for the plan."""
    spec = Spec.from_messages(req.messages)
    plan: list[tuple[int, int]] = [(0, stable_hash("greedy", req.prompt_key))]
    text, points = render(spec, plan)
    last = -1
    if req.temperature > 0:
        seed = stable_hash("sample", req.sampling_key, choice_index) if req.seeded else entropy.getrandbits(64)
        late = max(0.0, 1.0 - req.temperature)  # cooler -> the sample leaves the greedy path later
        lo, hi = LATE_FRACTION * late * 0.5, LATE_FRACTION * max(late, 0.25)
        visible = _visible(text, req.max_words)
        cands = _candidates(points, visible, lo, hi) or _candidates(points, visible, 0, LATE_FRACTION) or _candidates(points, visible, 0, 1)
        if cands:
            last = Random(seed).choice(cands).index
            plan.append((last, seed))
            text, points = render(spec, plan)
    # The backend configuration: every fingerprint perturbs the late part of the current
    # stream its own way (derived from that stream, so samples keep their own endings and
    # the n choices at temperature 0 stay identical).
    fp_seed = stable_hash("fingerprint", fingerprint, plan[-1][1])
    cands = _candidates(points, _visible(text, req.max_words), LATE_FRACTION, 1, after=last)
    if cands:
        plan.append((Random(fp_seed).choice(cands).index, fp_seed))
        text, points = render(spec, plan)
    rate = seed_drift if req.seeded else greedy_drift if req.temperature == 0 else 0.0
    if rate > 0:
        visible = _visible(text, req.max_words)
        chance = divergence_chance(rate, visible, drift_prefix)
        taken = [start for start, _ in plan]
        if drift_prefix <= 0:
            cands = _candidates(points, visible, LATE_FRACTION, 1, taken=taken)
            if cands and entropy.random() < chance:
                text, _ = render(spec, [*plan, (entropy.choice(cands).index, entropy.getrandbits(64))])
        else:
            cands = [p for p in _candidates(points, visible, 0, 1, taken=taken) if p.pos >= drift_prefix]
            draw = entropy.random()
            if cands and draw < chance:
                at = drift_prefix + _hazard_offset(draw, chance, visible - drift_prefix)
                text = _visible_drift(spec, plan, cands, at, entropy.getrandbits(64), text, visible)
    return text


def _visible_drift(spec: Spec, plan: list[tuple[int, int]], cands: list[Point], at: float, stream: int, text: str, visible: int) -> str:
    """The text parting at the first choice point from word ``at`` on whose change shows in
    the visible words (two phrases may share their first words, and the cut may hide the
    rest), trying later points, then earlier ones; the text unchanged if none can show.
    So a drift that was drawn is always a drift a reader sees, and the rate is exact."""
    start = next((i for i, p in enumerate(cands) if p.pos >= at), len(cands) - 1)
    shown = text.split()[:visible]
    for point in [*cands[start:], *reversed(cands[:start])]:
        drifted, _ = render(spec, [*plan, (point.index, stream)])
        if drifted.split()[:visible] != shown:
            return drifted
    return text


# --- structured output: tool arguments and JSON answers -------------------------------


def value_for_schema(schema: Mapping[str, Any], name: str, prompt: str, rng: Random, depth: int = 0) -> Any:
    """A plausible value for a JSON schema, borrowing words from the prompt where it can."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if schema.get("enum"):
        mentioned = [v for v in schema["enum"] if isinstance(v, str) and v.lower() in prompt.lower()]
        return mentioned[0] if mentioned else schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        props: Mapping[str, Any] = schema.get("properties") or {}
        return {k: value_for_schema(v if isinstance(v, Mapping) else {}, k, prompt, rng, depth + 1) for k, v in props.items()}
    if kind == "array":
        items = schema.get("items")
        item: Mapping[str, Any] = items if isinstance(items, Mapping) else {}
        return [value_for_schema(item, name, prompt, rng, depth + 1)]
    if kind == "integer":
        numbers = re.findall(r"\b\d+\b", prompt)
        return int(numbers[0]) if numbers else rng.randint(1, 10)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return True
    capitalised = re.findall(r"(?<!^)(?<![.!?] )\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*", prompt)
    if capitalised and any(w in name.lower() for w in ("location", "city", "place", "country", "name", "destination")):
        return capitalised[-1]
    return extract_topic(prompt)


def words_of(text: str) -> set[str]:
    """Lower-case content words, lightly stemmed, for matching prompts to tools."""
    split = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").replace("-", " ")
    return {w.rstrip("s") for w in re.findall(r"[a-z]+", split.lower()) if w not in _STOP and len(w) > 2}


def tool_arguments(function: Mapping[str, Any], prompt: str, key: Any) -> str:
    """The JSON arguments string for a call of ``function`` (deterministic per request)."""
    schema = function.get("parameters") if isinstance(function.get("parameters"), Mapping) else {}
    rng = Random(stable_hash("args", function.get("name"), key))
    value = value_for_schema(schema or {"type": "object"}, str(function.get("name", "")), prompt, rng)
    return json.dumps(value if isinstance(value, dict) else {"value": value}, ensure_ascii=False)
