r"""Images for a captioner: any picture made into what the run's model reads, saying what was done.

A captioner reads (H, W) grayscale images in [0, 1] of exactly its training size (8 × 40 for the default digit
compositions: light digits, left-aligned, on black). :func:`fit_image` takes an image of any size; the files
:func:`read_image` reads may also be of any mode. Each step that changes the picture is named in the notes
returned with it, so that a caption of a picture the model saw differently from the user is never silent:

1. mode: colour (RGB, CMYK, YCbCr, a palette) to luminance, L = 0.299 R + 0.587 G + 0.114 B (PIL's
   ``convert("L")``, ITU-R 601-2); an alpha channel laid over black (the training background); 16- and 32-bit
   integers and floats scaled to [0, 1]; of an animation, its first frame;
2. size: scaled by s = min(H / h, W / w), so that the whole picture fits and keeps its aspect ratio
   (antialiased area averaging when shrinking, bilinear when enlarging);
3. padding: the rest of the H × W frame filled with the picture's background (the median of its border
   pixels), the picture placed left-aligned and vertically centred, as the training compositions are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.errors import InputError
from rnnkit.extras import require

_COLOUR_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2 luma, as PIL's convert("L")


def read_image(path: str, height: int, width: int, notes: list[str] | None = None) -> np.ndarray:
    """One image to caption from a file, (height, width) float32 in [0, 1]; what was done to it is appended to
    ``notes`` (one phrase a step; nothing for an image of the model's size and mode).

    A picture file PIL reads (PNG, JPEG, GIF, BMP, TIFF, ... in any mode) or a ``.npy`` array: (h, w), or
    (h, w, 3|4) colour; uint8 0-255 or numbers (scaled to [0, 1] where they lie outside). InputError for a
    missing or unreadable file.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder; give one image file")
    if path.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:  # EOFError: an empty or truncated file
            raise InputError(f"{path} is not a NumPy .npy array ({error}); save one with np.save") from None
        gray, converted = gray_array(array, path)
    else:
        gray, converted = _read_picture(path)
    fitted, fit_notes = fit_image(gray, height, width)
    if notes is not None:
        notes += [*converted, *fit_notes]
    return fitted


def _read_picture(path: str) -> tuple[np.ndarray, list[str]]:
    """(h, w) float32 in [0, 1] from a picture file of any mode, and what the conversion did."""
    Image = require("PIL.Image", "caption")
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            image.load()  # the first frame
            mode = image.mode
            if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                array, notes = np.asarray(image, dtype=np.float64), []
            else:
                has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
                if has_alpha:  # laid over black, the background the model was trained on
                    rgba = image.convert("RGBA")
                    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                    image_l = Image.alpha_composite(black, rgba).convert("L")
                else:
                    image_l = image.convert("L")
                array = np.asarray(image_l, dtype=np.float32) / 255.0
                notes = [] if mode == "L" else [f"converted mode {mode} to grayscale"
                                                 + (" over black (its transparency)" if has_alpha else "")]
    except (OSError, ValueError, Image.UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise InputError(f"{path} is not an image PIL can read ({error}); give a PNG, JPEG or a .npy array") from None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array, notes = _scaled_numbers(array, f"mode {mode}")
    if frames > 1:
        notes.insert(0, f"read the first of its {frames} frames")
    return array.astype(np.float32), notes


def gray_array(array, name: str = "the image") -> tuple[np.ndarray, list[str]]:
    """(h, w) float32 in [0, 1] from an (h, w) or (h, w, 3|4) array of uint8 or numbers, and what was done;
    InputError for another shape or values that are not finite."""
    array = np.asarray(array)
    notes = []
    if array.ndim == 3 and array.shape[2] in (3, 4) and min(array.shape[:2]) > 0:
        channels, divisor = array.shape[2], 255.0 if array.dtype == np.uint8 else 1.0
        colour = array[..., :3].astype(np.float64) / divisor  # (h, w, 3)
        if channels == 4:  # over black, as a picture's transparency
            colour = colour * (array[..., 3].astype(np.float64) / divisor)[..., None]
        array = colour @ _COLOUR_WEIGHTS.astype(np.float64)  # (h, w)
        notes.append(f"converted {'RGBA' if channels == 4 else 'RGB'} to grayscale")
    if array.ndim != 2 or 0 in array.shape:
        raise InputError(f"{name} holds an array of shape {array.shape}; give an image: (height, width) or "
                         "(height, width, 3|4) colour, uint8 0-255 or floats in [0, 1]")
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32), notes
    if array.dtype.kind not in "biuf":
        raise InputError(f"{name}: pixel values must be numbers (uint8 0-255 or floats in [0, 1]), got {array.dtype}")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"{name} holds pixel values that are not finite (nan or inf); give numbers in [0, 1]")
    scaled, more = _scaled_numbers(values, f"{array.dtype} values")
    return scaled.astype(np.float32), notes + more


def _scaled_numbers(values: np.ndarray, what: str) -> tuple[np.ndarray, list[str]]:
    """Numbers to [0, 1]: kept where they lie there already; else integers of 8 or 16 bits by 255 or 65535, and
    anything else from its own minimum to its maximum."""
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if 0 <= low and high <= 1:
        return values, []
    integral = bool(np.all(values == np.round(values)))
    for top in (255, 65535):
        if integral and low >= 0 and high <= top:
            return values / top, [f"scaled its {what} (0-{top}) to [0, 1]"]
    span = high - low
    return (values - low) / (span or 1.0), [f"scaled its {what} ({low:g} to {high:g}) to [0, 1]"]


def fit_image(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, list[str]]:
    """(height, width) float32 from an (h, w) image in [0, 1] of any size, and what was done: scaled to fit
    with its aspect ratio, padded with its background, left-aligned and vertically centred (the module's 2, 3)."""
    h, w = image.shape
    if (h, w) == (height, width):
        return image.astype(np.float32), []
    scale = min(height / h, width / w)
    new_h, new_w = max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))
    notes = []
    if (new_h, new_w) != (h, w):
        pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]  # (1, 1, h, w)
        shrinking = new_h < h or new_w < w
        resized = F.interpolate(pixels, size=(new_h, new_w), mode="bilinear", align_corners=False,
                                antialias=shrinking)  # (1, 1, new_h, new_w)
        image = resized[0, 0].clamp_(0, 1).numpy()
        notes.append(f"scaled it from {w}×{h} to {new_w}×{new_h} pixels (width×height)")
    if (new_h, new_w) != (height, width):
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        background = float(np.median(border))
        frame = np.full((height, width), background, dtype=np.float32)
        top = (height - new_h) // 2
        frame[top : top + new_h, :new_w] = image
        image = frame
        notes.append(f"padded it to {width}×{height} with its background ({background:.2f}), left-aligned")
        if background > 0.5:
            notes.append("its background is light: the model was trained on light digits on black, invert the "
                         "picture if its writing is dark")
    return image.astype(np.float32), notes


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Save an (H, W) image in [0, 1] as an 8-bit grayscale PNG (what :func:`read_image` reads back)."""
    Image = require("PIL.Image", "caption")
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), mode="L").save(path)
