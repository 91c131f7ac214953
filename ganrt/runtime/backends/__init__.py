"""Runtime backends, split as in Polygraphy: a loader reads an artifact, a runner owns buffers and ``run``.

Each backend module imports its framework (onnxruntime, tensorrt) lazily inside its loader, so importing
``ganrt.runtime`` never fails because an optional framework is missing.
"""
