"""The character corpora for small language models: no download, nothing outside Python.

* ``project``: original prose written for Neural Canvas, followed by the Zen of Python taken
  from Python's own ``this`` module (never imported: importing it prints; its source is
  parsed and only the string literal is read, then decoded from rot13). A few KB: enough to
  watch a model learn, too little to generalize from.
* ``python_docs``: the reference documentation Python ships for ``help()``
  (``pydoc_data.topics``, about 450,000 characters of English prose and code), the corpus
  on which a held-out validation loss means something.
"""

from __future__ import annotations

import ast
import codecs
import re
import importlib.util
from functools import lru_cache
from pathlib import Path

#: Prose written for this project (not copied from anywhere).
PROSE = """\
A neural network is a drawing that learns. You place a few boxes on a canvas, connect
them with lines, and each box turns the numbers it receives into new numbers. At first
the answers are wrong, and that is fine. Every wrong answer is a small lesson. The
network measures how far it was from the target, and it nudges every weight a little
in the direction that would have made the mistake smaller.

Drawing a model is a good way to think about it. An input node is a door where the data
comes in. A dense layer mixes every value with every other value. A convolution looks
at a small window, slides it across an image, and asks the same question everywhere: is
there an edge here, a corner, a curve? Pooling keeps the strongest answers and forgets
where exactly they were. At the end, an output node says what the model believes.

Learning is patient work. One pass over the data is called an epoch, and a model may
need many of them. The loss falls quickly at first, then slowly, and sometimes it
wanders. If the training loss keeps falling while the validation loss rises, the model
has started to memorize instead of understand. Then it helps to draw a smaller model,
to add dropout, or simply to stop a little earlier.

A recurrent layer reads a sequence one step at a time and carries a memory from step to
step. It can read a sentence, a melody or a week of temperatures. Attention takes a
different path: every position looks at every other position and decides which ones
matter. Both ideas fit on the canvas as a single box with one line in and one line out.

A small language model learns to guess the next character. Give it the beginning of a
word and it tries to finish it. After a few minutes of training it writes nonsense that
looks almost like English; after a few more, whole words appear, then short phrases.
Nothing in the model knows what a word is. It only learned which characters tend to
follow which, and that turned out to be enough to sound a little like us.

Good tools make experiments cheap. Change one line, press train, and watch the curves.
Try a wider layer, a deeper stack, a different learning rate. Keep the experiments that
work, throw away the ones that do not, and write down what you learned. The canvas
remembers the drawing; you remember the reasons.

Data matters more than any layer. Look at the samples before you train. Check that the
labels are right, that the classes are balanced, and that the validation set was never
seen during training. Normalize the inputs so that every feature speaks at a similar
volume. A clean small dataset often teaches more than a large noisy one.

An autoencoder is a model that draws itself through a narrow gap. It squeezes each input
into a few numbers and then tries to rebuild the input from them. What survives the gap
is what the model found most worth keeping. A generator plays a different game: it starts
from random noise and learns to paint samples that a second network cannot tell apart
from the real ones. The two improve together, each one the teacher of the other.

Every weight starts as a random guess. Gradient descent is the simple rule that turns
those guesses into knowledge: look at the slope of the loss, take a small step downhill,
and repeat. The step size is the learning rate. Too small, and the model crawls; too
large, and it jumps over the valley it was looking for. Finding a good value is part of
the craft, and the curves on the screen are the best guide.

When a model finally works, it is tempting to believe it understands the world. It does
not. It understands the data it was shown, and only as well as the drawing allowed.
That is not a weakness to hide but a fact to design around: test on new data, look at
the mistakes, and let them suggest the next drawing.
"""


def _zen_source_text() -> str:
    """The rot13-encoded Zen from the source of the ``this`` module, or ``""``."""
    spec = importlib.util.find_spec("this")
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "s"):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return ""
            return value if isinstance(value, str) else ""
    return ""


@lru_cache(maxsize=1)
def zen_of_python() -> str:
    """The Zen of Python, decoded without importing ``this`` (which would print it).

    Returns:
        The text, or ``""`` where this Python ships no source for ``this``.
    """
    return codecs.decode(_zen_source_text(), "rot13")


@lru_cache(maxsize=1)
def corpus_text() -> str:
    """The whole corpus: the project's prose, then the Zen of Python.

    Returns:
        The text (a few KB).
    """
    zen = zen_of_python().strip()
    return PROSE + ("\n" + zen + "\n" if zen else "")


def python_docs_text() -> str:
    """The documentation topics Python ships for ``help()``, in a fixed order (``""`` if absent)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions package pydoc_data separately
        return ""
    text = "\n".join(str(topics[key]).strip() for key in sorted(topics))
    # printable ASCII and newlines only (96 characters whatever the Python version), and runs of
    # indentation would teach a small model to emit blanks: keep one space, one blank line
    text = "".join(ch if " " <= ch <= "~" or ch == "\n" else " " if ch == "\t" else "?" for ch in text)
    text = re.sub(r" +", " ", text)
    return re.sub(r"\n( ?\n)+", "\n\n", text)


#: The alphabet of ``python_docs``: newline and printable ASCII, the same on every Python.
PYTHON_DOCS_ALPHABET = ["\n"] + [chr(code) for code in range(32, 127)]

#: The corpora by the name the dataset's ``corpus`` option uses.
CORPORA = {"project": corpus_text, "python_docs": python_docs_text}
