"""The exported serving graph: a `tf.Module` with three signatures and bounded inputs.

Signatures (all outputs named; B = batch, C = classes, k = min(5, C)):

- `serving_default(images)`: uint8 [B, H, W, 3] images of any size up to the
  bound. They are brought to the model's input size as the training pipeline
  does (ImageNet-style datasets: `ar2_tf.data.sources.center_crop`; the others: a
  bilinear, antialiased resize, skipped when the size already matches), then
  preprocessed with the run's `ar2_tf.data.preprocessing` function. Returns
  `probabilities` float32 [B, C], `classes` int64 [B] (top-1),
  `top_k_classes` int64 [B, k], `top_k_scores` float32 [B, k] and
  `class_names` string [B] (top-1 name, read from the `class_names.txt` asset).
- `predict_preprocessed(inputs)`: float32 [B, H, W, 3] already-preprocessed
  model inputs; the same outputs.
- `cam(images)`: as `serving_default`, plus `cam` float32 [B, H_in, W_in], the
  attention map of the predicted class resized to the request's resolution: the
  run's kind (`ar2_tf.method.attention`: the class activation map of paper Eq. 1
  for linear heads, Grad-CAM otherwise). For centre-cropped models it covers the
  crop and is 0 outside it. Only for models whose head is found
  (`ar2_tf.method.head`).

The network is served with its BatchNorm layers folded into the convolutions before them
(`ar2_tf.models.batchnorm_folding`, as the evaluation does): the same function to float rounding, one op
less per pair. Build the module once the weights are final: the folded copy does not follow later
changes to the model. `python scripts/bench_serving.py` measures the answer time.

Inputs are checked inside the graph, so TF Serving enforces the checks too:
`tf.ensure_shape` rejects the wrong rank or channel count (without it a rank-3
tensor reaches the convolution and aborts the whole process), and assertions
reject empty or oversized images and oversized batches, before any resizing.
"""

import keras
import tensorflow as tf

from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.data.sources import center_crop, resize_uint8
from ar2_tf.errors import UserError
from ar2_tf.method.attention import HeadAttention
from ar2_tf.method.head import build_backbone, find_head
from ar2_tf.models.batchnorm_folding import fold_batchnorm, folded_count
from export.limits import MAX_BATCH_SIZE, MAX_IMAGE_SIZE

TOP_K = 5
CLASS_NAMES_FILE = "class_names.txt"


class _KerasParts:
    """The Keras models and attention the signatures call, kept out of the SavedModel's object graph
    (a plain object: TensorFlow does not track into it). Tracked, each Keras model would add its own
    traced copy of the network (Keras' default serving function) to the SavedModel: for ResNet-50 at
    224 px that took saving from 4.4-5.1 s to 7.5-9.4 s and saved_model.pb from 1.4 to 2.5 MB. Their
    variables are saved through `ServingModule.model_variables`."""


def _serving_shape(model, resize, input_shape) -> tuple:
    """The [H, W, 3] the module serves at: `input_shape`, else the model's own input size."""
    if resize not in ("center_crop", "resize"):
        raise ValueError(f"resize must be 'center_crop' or 'resize', got {resize!r}")
    shape = tuple(model.inputs[0].shape[1:] if input_shape is None else input_shape)
    if None in shape:
        raise ValueError(f"the model takes images of any size {shape}; pass input_shape, the "
                         "[H, W, 3] it was trained at, to serve at that size")
    return shape


def _class_names_table(class_names_path):
    """(the class-names file as a SavedModel asset, a table from class index to name read from it)."""
    asset = tf.saved_model.Asset(class_names_path)
    initializer = tf.lookup.TextFileInitializer(asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                                                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
    return asset, tf.lookup.StaticHashTable(initializer, default_value="")


class ServingModule(tf.Module):
    """A repaired classifier wrapped for TF Serving.

    Args:
        model: the Keras classifier (input: preprocessed float images [B, H, W, 3]).
        class_names_path: a text file with one class name per line, in label order
            (saved as an asset).
        preprocessing: name of the uint8 -> model input function (ar2_tf.data.preprocessing).
        resize: "center_crop" (ImageNet-style) or "resize" (CIFAR-style).
        max_image_size: largest accepted image height and width.
        max_batch_size: most images accepted in one request.
        feature_layer, dense_layer: optional head overrides (as in training).
        attention: "auto", "cam" or "gradcam": the kind of the `cam` signature's map (as in training).
        input_shape: [H, W, 3] to serve at (default: the model's input size; required for a model that takes
            any size: the size it was trained at).
        fold: serve a copy with BatchNorm folded into the convolutions (module docstring); `model` is unchanged.

    Example:
        module = ServingModule(model, "names.txt", preprocessing="unit", resize="resize")
        tf.saved_model.save(module, path, signatures=module.signatures())
    """

    def __init__(self, model, class_names_path, *, preprocessing, resize, max_image_size=MAX_IMAGE_SIZE,
                 max_batch_size=MAX_BATCH_SIZE, feature_layer=None, dense_layer=None, attention="auto",
                 input_shape=None, fold=True):
        super().__init__(name="ar2_serving")
        self.input_shape = _serving_shape(model, resize, input_shape)
        self.num_classes = int(model.outputs[0].shape[-1])
        self.resize_mode = resize
        self.max_image_size = int(max_image_size)
        self.max_batch_size = int(max_batch_size)
        self._preprocess = get_preprocessor(preprocessing)
        if fold:
            model = fold_batchnorm(model)
        self.folded_batchnorms = folded_count(model)  # 0 unless folded
        self._softmax = not _ends_in_softmax(model)
        self._wrap_model(model, feature_layer, dense_layer, attention)
        self.model_variables = [variable.value for variable in model.weights]  # what the SavedModel stores
        self.class_names_asset, self.class_table = _class_names_table(class_names_path)
        self._trace_signatures()

    def _wrap_model(self, model, feature_layer, dense_layer, attention):
        """The Keras parts the signatures call: the classifier and, when its head is found, the network that
        also returns the last feature map, and the head's attention (else `cam_unavailable` says why not)."""
        self._keras = _KerasParts()
        # Single-input wrappers share the (folded) model's weights; calling them with a
        # plain tensor matches their input structure (legacy .h5 models expect a list).
        self._keras.classifier = keras.Model(model.inputs[0], model.outputs[0])
        self.cam_unavailable = None  # why there is no cam signature, if there is none
        try:
            head = find_head(model, feature_layer, dense_layer)
            self._keras.attention = HeadAttention(model, head, attention)
        except UserError as error:
            head, self.cam_unavailable = None, str(error)
        if head is not None:
            features = build_backbone(model, head).outputs[0]
            self._keras.cam_network = keras.Model(model.inputs[0], [features, model.outputs[0]])
        self.has_cam = head is not None

    def _trace_signatures(self):
        """The network and the signatures as `tf.function`s with fixed input signatures."""
        height, width = self.input_shape[:2]
        images = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        inputs = tf.TensorSpec([None, height, width, self.input_shape[2]], tf.float32, name="inputs")
        # The network is traced once and called by every signature (tracing a deep network costs seconds).
        self.network = tf.function(self._network, input_signature=[inputs])
        self.serving_default = tf.function(self._serve, input_signature=[images])
        self.predict_preprocessed = tf.function(self._predict_preprocessed, input_signature=[inputs])
        if self.has_cam:
            self.cam = tf.function(self._cam, input_signature=[images])

    def signatures(self) -> dict:
        """The signature map for `tf.saved_model.save`."""
        signatures = {"serving_default": self.serving_default, "predict_preprocessed": self.predict_preprocessed}
        if self.has_cam:
            signatures["cam"] = self.cam
        return signatures

    # The three signatures.

    def _serve(self, images):
        return self._outputs(self._probabilities(self.model_inputs(images)))

    def _predict_preprocessed(self, inputs):
        # Without this, a wrong-rank tensor reaches the convolution kernel and aborts the process.
        inputs = tf.ensure_shape(inputs, [None, *self.input_shape])
        return self._outputs(self._probabilities(inputs))

    def _cam(self, images):
        network = self.network(self.model_inputs(images))
        outputs = self._outputs(self._to_probabilities(network["predictions"]))
        maps = self._keras.attention.maps(network["features"], tf.cast(outputs["classes"][:, None], tf.int32))[:, 0]
        outputs["cam"] = self._cam_to_request(maps, tf.shape(images)[1:3])
        return outputs

    def _network(self, inputs):
        """The model's predictions on model inputs, and its last feature map when it has a head to attend to."""
        if self.has_cam:
            features, predictions = self._keras.cam_network(inputs, training=False)
            return {"predictions": predictions, "features": features}
        return {"predictions": self._keras.classifier(inputs, training=False)}

    # Shared pieces (also called eagerly by the export verification).

    def model_inputs(self, images):
        """Checked uint8 images [B, H, W, 3] -> preprocessed model inputs, as in training."""
        return self._preprocess(self.resize(check_images(images, self.max_image_size, self.max_batch_size)))

    def resize(self, images):
        """uint8 [B, H, W, 3] -> uint8 [B, h, w, 3] at the model's input size, as the training pipeline."""
        height, width = self.input_shape[:2]
        if self.resize_mode == "center_crop":
            return tf.map_fn(lambda image: center_crop(image, height), images,
                             fn_output_signature=tf.TensorSpec([height, width, 3], tf.uint8))
        same = tf.reduce_all(tf.equal(tf.shape(images)[1:3], [height, width]))
        resized = tf.cond(same, lambda: images, lambda: resize_uint8(images, (height, width)))
        return tf.ensure_shape(resized, [None, height, width, 3])

    def _probabilities(self, model_inputs):
        return self._to_probabilities(self.network(model_inputs)["predictions"])

    def _to_probabilities(self, predictions):
        predictions = tf.cast(predictions, tf.float32)
        return tf.nn.softmax(predictions) if self._softmax else predictions

    def _outputs(self, probabilities):
        top = tf.math.top_k(probabilities, k=min(TOP_K, self.num_classes))
        classes = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "classes": classes,
                "top_k_classes": tf.cast(top.indices, tf.int64), "top_k_scores": top.values,
                "class_names": self.class_table.lookup(classes)}

    def _cam_to_request(self, maps, request_size):
        """CAMs [B, h, w] -> [B, H_in, W_in] aligned with the request images."""
        maps = maps[..., None]
        if self.resize_mode == "center_crop":
            # Undo ar2_tf.data.sources.center_crop's geometry: the map covers the central crop of
            # the image resized to short side size*256/224; pad it to that image, then resize.
            size = self.input_shape[0]
            shape = tf.cast(request_size, tf.float32)
            resized_shape = tf.cast(tf.round(shape * (size * 256.0 / 224.0) / tf.reduce_min(shape)), tf.int32)
            top, left = (resized_shape[0] - size) // 2, (resized_shape[1] - size) // 2
            maps = tf.image.resize(maps, (size, size), method="bilinear")
            maps = tf.pad(maps, [[0, 0], [top, resized_shape[0] - top - size],
                                 [left, resized_shape[1] - left - size], [0, 0]])
        return tf.image.resize(maps, request_size, method="bilinear")[..., 0]


def check_images(images, max_image_size=MAX_IMAGE_SIZE, max_batch_size=MAX_BATCH_SIZE):
    """Returns `images` once they are a uint8 [B, H, W, 3] batch within the bounds; else raises.

    In a graph the checks run before anything that uses the images (control
    dependencies), so an oversized request fails instead of being resized.

    Raises:
        tf.errors.InvalidArgumentError: wrong rank or channel count, an empty or
            oversized image, or too many images.
    """
    if images.dtype != tf.uint8:
        raise TypeError(f"images must be uint8 pixels, got {images.dtype.name}")
    images = tf.ensure_shape(images, [None, None, None, 3])  # a runtime check: survives graph optimisation
    shape = tf.shape(images)
    checks = [
        tf.debugging.assert_less_equal(
            shape[0], max_batch_size, message=f"too many images in one request: at most {max_batch_size}"),
        tf.debugging.assert_positive(
            shape[1:3], message="images must be at least 1x1 pixels"),
        tf.debugging.assert_less_equal(
            shape[1:3], max_image_size,
            message=f"image too large: height and width must be at most {max_image_size} pixels "
                    f"(python -m export --max-image-size); downscale it before sending"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def _ends_in_softmax(model) -> bool:
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"
