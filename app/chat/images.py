"""Image and audio placeholders, expanded as each model family's processor expands them.

A chat template writes one placeholder per image or audio clip; the model's processor then
replaces it with the tokens the encoder's output fills, and that is what the model is trained
on. The counts follow transformers' processors for the families whose tokenizers are bundled or
common. Images:

- Gemma 3 (`Gemma3Processor`): `<start_of_image>` becomes
  `\\n\\n<start_of_image>` + 256 × `<image_soft_token>` + `<end_of_image>\\n\\n`.
- Qwen2.5-VL and Qwen3-VL (`Qwen2VLImageProcessor`): each `<|image_pad|>` becomes
  N = (H/p · W/p) / m² pads, where p is the patch size, m the merge size (2) and H×W the image
  resized by `smart_resize`: both sides multiples of p·m, area within [min_pixels, max_pixels],
  aspect kept. Qwen2.5-VL: p = 14, area in [56·56, 28·28·1280], so 640×480 is resized to
  644×476, 46·34 patches, 391 tokens. Qwen3-VL (its preprocessor config: patch_size 16,
  merge_size 2, size shortest_edge 65,536 / longest_edge 16,777,216 pixels): p = 16, so 640×480
  stays 640×480, 40·30 patches, 300 tokens. The two share their image tokens; Qwen3's vocabulary
  is told apart by its `<think>` token, which Qwen2.5's lacks.
- LLaVA 1.5 (`LlavaProcessor`, CLIP ViT-L/14 at 336 px): each `<image>` becomes 576 × `<image>`.

Audio (a part's `duration_s`, heard at the feature extractor's 16 kHz):
- Qwen2-Audio (`Qwen2AudioProcessor` over Whisper features): each `<|AUDIO|>` (between
  `<|audio_bos|>` and `<|audio_eos|>`) becomes N × `<|AUDIO|>`: the clip is cut at 30 s, gives
  L = ceil(samples / 160) mel frames, and N = ((L - 1) // 2 + 1 - 2) // 2 + 1 (the encoder's two
  stride-2 steps): 1 s -> 25 tokens, 30 s or more -> 750.
- Gemma 3n (`Gemma3nProcessor`): each `<audio_soft_token>` becomes
  `\n\n<start_of_audio>` + 188 × `<audio_soft_token>` + `<end_of_audio>\n\n`, whatever the length
  (every clip is padded or cut to one window).

Example: expand_images("a<image>b", LLAVA, [MediaSize(640, 480)])
         -> Expanded(text="a" + "<image>" * 576 + "b", images=[(1, 4033)], ...)

Design concession: the family is recognised from the tokenizer's vocabulary (its image or audio
tokens, and `<think>` for Qwen3-VL), not from a processor config, which the bundled assets do
not ship; a model whose processor config departs from its family's published one is counted as
the family.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from app.errors import InputError


@dataclass(frozen=True, slots=True)
class MediaSize:
    """An image's size in pixels (Qwen-VL needs it) or an audio clip's length in seconds
    (Qwen2-Audio needs it)."""

    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class Family:
    """How one family's processor expands the placeholder its template writes."""

    name: str
    placeholder: str  # what the template writes per image
    image_token: str  # the token repeated for the encoder's output
    expand: Callable[[MediaSize, int], str]  # (size, image index) -> replacement text
    marker: str | None = None  # a further token the family's vocabulary has (tells it apart)
    kind: str = "image"  # or "audio": the part its tokens are


def _gemma3(_size: MediaSize, _index: int) -> str:
    return "\n\n<start_of_image>" + "<image_soft_token>" * 256 + "<end_of_image>\n\n"


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 28 * 28 * 1280,
) -> tuple[int, int]:
    """Qwen2-VL's resize: both sides multiples of `factor`, area within bounds, aspect kept."""
    if max(height, width) / min(height, width) > 200:
        raise InputError(
            f"an image of {width}x{height} pixels is too narrow for Qwen-VL (aspect ratio over "
            "200): change its width or height",
            field="messages",
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True, slots=True)
class VisionGrid:
    """A Qwen-VL image processor's sizes: patch side, merge side, pixel-area bounds."""

    patch: int
    merge: int
    min_pixels: int
    max_pixels: int


QWEN2_5_VL = VisionGrid(patch=14, merge=2, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
QWEN3_VL = VisionGrid(patch=16, merge=2, min_pixels=65_536, max_pixels=16_777_216)


def qwen_vl_tokens(size: MediaSize, index: int = 0, grid: VisionGrid = QWEN2_5_VL) -> int:
    """How many `<|image_pad|>` one image becomes: (H/p · W/p) / m² after `smart_resize`.

    Example: qwen_vl_tokens(MediaSize(640, 480)) -> 391; with grid=QWEN3_VL -> 300
    """
    if not size.width or not size.height or size.width < 1 or size.height < 1:
        raise InputError(
            f"image {index} needs its width and height (pixels) for Qwen-VL's token count: "
            'give the image part "width" and "height"',
            field="messages",
        )
    factor = grid.patch * grid.merge
    h_bar, w_bar = smart_resize(size.height, size.width, factor, grid.min_pixels, grid.max_pixels)
    return (h_bar // grid.patch) * (w_bar // grid.patch) // grid.merge**2


def _qwen_vl(size: MediaSize, index: int) -> str:
    return "<|image_pad|>" * qwen_vl_tokens(size, index)


def _qwen3_vl(size: MediaSize, index: int) -> str:
    return "<|image_pad|>" * qwen_vl_tokens(size, index, QWEN3_VL)


def _llava(_size: MediaSize, _index: int) -> str:
    return "<image>" * 576


# A family with a marker comes before the one it refines.
FAMILIES: tuple[Family, ...] = (
    Family("gemma3", "<start_of_image>", "<image_soft_token>", _gemma3),
    Family("qwen3-vl", "<|image_pad|>", "<|image_pad|>", _qwen3_vl, marker="<think>"),
    Family("qwen-vl", "<|image_pad|>", "<|image_pad|>", _qwen_vl),
    Family("llava", "<image>", "<image>", _llava),
)


def family_for(vocabulary: Collection[str], kind: str = "image") -> Family | None:
    """The family whose image (or audio) tokens the tokenizer has (its added tokens' texts, or
    any collection of token texts: a dict's keys are looked up without a copy)."""
    for family in FAMILIES if kind == "image" else AUDIO_FAMILIES:
        marked = family.marker is None or family.marker in vocabulary
        if marked and family.image_token in vocabulary and family.placeholder in vocabulary:
            return family
    return None


SAMPLING_RATE = 16_000  # Whisper's and Gemma 3n's feature extractors
WHISPER_WINDOW_S = 30  # Qwen2-Audio's clips are cut at one Whisper window
HOP = 160  # samples per mel frame


def qwen2_audio_tokens(size: MediaSize, index: int = 0) -> int:
    """How many `<|AUDIO|>` one clip becomes (see the module docstring).

    Example: qwen2_audio_tokens(MediaSize(duration_s=1.0)) -> 25; 45 s -> 750 (cut at 30 s)
    """
    duration = size.duration_s
    if duration is None or not duration > 0:
        raise InputError(
            f"audio {index} needs its length for Qwen2-Audio's token count: give the audio "
            'part "duration_s" (seconds, above 0)',
            field="messages",
        )
    samples = min(round(duration * SAMPLING_RATE), WHISPER_WINDOW_S * SAMPLING_RATE)
    frames = max(1, math.ceil(samples / HOP))
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def _qwen2_audio(size: MediaSize, index: int) -> str:
    return "<|AUDIO|>" * qwen2_audio_tokens(size, index)


def _gemma3n_audio(_size: MediaSize, _index: int) -> str:
    return "\n\n<start_of_audio>" + "<audio_soft_token>" * 188 + "<end_of_audio>\n\n"


AUDIO_FAMILIES: tuple[Family, ...] = (
    Family("qwen2-audio", "<|AUDIO|>", "<|AUDIO|>", _qwen2_audio, "<|audio_bos|>", "audio"),
    Family(
        "gemma3n-audio",
        "<audio_soft_token>",
        "<audio_soft_token>",
        _gemma3n_audio,
        "<start_of_audio>",
        "audio",
    ),
)


@dataclass
class Expanded:
    """A text with its image placeholders expanded: the new text, each image's character range,
    and a map from old character offsets to new ones."""

    text: str
    images: list[tuple[int, int]]
    _olds: list[int]
    _shifts: list[int]

    def position(self, old: int) -> int:
        """Where old offset `old` lies in the new text (a placeholder's start stays its start)."""
        i = bisect_right(self._olds, old) - 1
        return old + (self._shifts[i] if i >= 0 else 0)


def expand_images(text: str, family: Family, sizes: Sequence[MediaSize]) -> Expanded:
    """Replace each placeholder, in order, with its expansion for the matching image size.

    The count of placeholders must equal the count of images given (`image-count-mismatch`
    reports it otherwise; here extra placeholders expand with an unknown size where the family
    needs none, and are refused where it does)."""
    out: list[str] = []
    images: list[tuple[int, int]] = []
    olds: list[int] = []
    shifts: list[int] = []
    pos = shift = 0
    index = 0
    while True:
        at = text.find(family.placeholder, pos)
        if at == -1:
            break
        out.append(text[pos:at])
        size = sizes[index] if index < len(sizes) else MediaSize()
        replacement = family.expand(size, index)
        start = at + shift
        out.append(replacement)
        images.append((start, start + len(replacement)))
        end = at + len(family.placeholder)
        shift += len(replacement) - len(family.placeholder)
        olds.append(end)
        shifts.append(shift)
        pos = end
        index += 1
    out.append(text[pos:])
    return Expanded("".join(out), images, olds, shifts)
