"""Helpers shared by tests of several packages."""

import keras

# JAX's eager mode compiles every primitive of a call separately (4-5x slower than one compiled
# program for these models); TensorFlow and PyTorch run a call cheapest eagerly (no tracing).
EAGER = keras.backend.backend() != "jax"


def forward(model, x):
    """The model's inference output on ``x`` as NumPy, computed the backend's cheapest way."""
    if EAGER:
        return keras.ops.convert_to_numpy(model(x, training=False))
    return model.predict(x, batch_size=len(x), verbose=0)
