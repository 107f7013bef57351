"""The AR2 repair model: a classifier, its frozen reference copy and the two training phases.

`RepairModel.train_step` runs the phase selected by `set_phase` (the schedule
callback in `ar2_tf.method.schedule` calls it between batches or epochs):

- refinement ("refine"): the CAM alignment loss of Eq. 2, applied to the
  trainable variables of the convolutional backbone only, so the head (global
  pooling to logits) is untouched; its maps are exact CAMs or, for non-linear
  heads, Grad-CAM (`ar2_tf.method.attention`);
- fine-tuning ("finetune"): cross-entropy on clean and corrupted images, all
  trainable variables.

Frozen layers (`trainable = False`) stay exactly as they are in both phases:
their weights are in no variable list, and Keras runs a frozen BatchNormalization
in inference mode under `training=True`, so its moving statistics never update.
Freezing is the user's choice, and undoing it would change layers they chose to
keep (`ar2_tf.method.head` says which runs are refused and which get a note).

Each phase is its own compiled function (`ar2_tf.method.phased_trainer.PhasedTrainer`
says which Keras behaviour that relies on). Batches are `((clean, corrupted),
labels)` with images already preprocessed for the classifier
(`ar2_tf.corrupted_pairs` makes them from a user's `(images, labels)` batches).
"""

import warnings

import keras
import tensorflow as tf

from ar2_tf.method.attention import HeadAttention
from ar2_tf.method.head import backbone_variables, build_backbone, check_trainable
from ar2_tf.method.losses import cam_alignment_loss
from ar2_tf.method.phased_trainer import FINETUNE, REFINE, PhasedTrainer, scale_for_replicas
from ar2_tf.method.schedule import ScheduleCallback
from ar2_tf.models.cloning import copy_model


def frozen_copy(classifier):
    """A non-trainable clone of `classifier` with its current weights (θ_ref)."""
    reference = copy_model(classifier)
    reference.trainable = False
    return reference


class RepairModel(PhasedTrainer):
    """Repairs `classifier` in place with AR2 (paper Algorithm 1): a Keras model to `compile` and `fit`.

    `fit` trains on `((clean, corrupted), labels)` batches (`ar2_tf.corrupted_pairs`), alternating the
    refinement and fine-tuning phases as a `ar2_tf.callbacks.PhaseSchedule` among its callbacks says.
    `validation_data` may be such pairs (clean and corrupted accuracy) or `(images, labels)` batches already
    preprocessed for the classifier (clean accuracy); validation runs the classifier in inference mode. The
    classifier is the model to save.

    Args:
        classifier: the pretrained Keras classifier θ; its weights are updated.
        k: classes per view in the alignment class set (Eq. 2).
        alpha: weight of the corrupted-view term (Eq. 2).
        cam_normalization: "l2" or "none" (see `ar2_tf.method.losses`).
        topk_from: "repaired" (θ's clean prediction gives topk(x)) or "reference" (θ_ref's).
        feature_layer: name of the last feature map (default: found by `ar2_tf.method.head`).
        dense_layer: name of the class layer (default: found by `ar2_tf.method.head`).
        attention: "auto", "cam" or "gradcam" (`ar2_tf.method.attention`).
        reference: the frozen pretrained copy θ_ref (default: a copy of `classifier` as it is now).

    Example:
        model = ar2_tf.RepairModel(keras.saving.load_model("resnet20.h5"), k=3, alpha=1.0)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        model.fit(ar2_tf.corrupted_pairs(train, "fog", 3, preprocessing="unit"), epochs=6,
                  callbacks=[ar2_tf.callbacks.PhaseSchedule(refine_steps=1, finetune_steps=2)])
        model.classifier.save("repaired.keras")

    Reference:
        AR2: attention-guided repair for the robustness of CNNs against common corruptions.
    """

    PHASES = (REFINE, FINETUNE)

    def __init__(self, classifier, k=3, alpha=1.0, cam_normalization="l2", topk_from="repaired",
                 feature_layer=None, dense_layer=None, attention="auto", reference=None, **kwargs):
        super().__init__(classifier, feature_layer, dense_layer, attention, **kwargs)
        self.reference = reference if reference is not None else frozen_copy(classifier)
        self.k, self.alpha = int(k), float(alpha)
        self.cam_normalization, self.topk_from = cam_normalization, topk_from
        self.reference_backbone = build_backbone(self.reference, self.head)
        self.reference_attention = HeadAttention(self.reference, self.head, self.attention.kind)
        self.refine_optimizer = None
        self._phase_chosen = False  # set_phase was called: fit without a schedule runs that phase, unwarned
        self._trackers = {name: keras.metrics.Mean(name=name) for name in ("align_loss", "ce_loss")}
        self._trackers.update({name: keras.metrics.SparseCategoricalAccuracy(name=name)
                               for name in ("clean_accuracy", "corrupted_accuracy")})

    @property
    def head_variables(self):
        """θ's head: every layer from the global pooling to the logits (frozen during refinement)."""
        return self.attention.variables

    @property
    def backbone_variables(self):
        """Trainable variables of θ except the head's: what refinement updates."""
        return backbone_variables(self.classifier, self.head)

    def compile(self, optimizer, refine_optimizer=None, **kwargs):
        """Sets the optimizers (the loss is the method's: the Eq. 2 alignment loss, then cross-entropy).

        Args:
            optimizer: runs fine-tuning.
            refine_optimizer: runs refinement (default: a fresh copy of `optimizer`).
            **kwargs: passed to `keras.Model.compile` (e.g. `steps_per_execution`, `jit_compile`).
        """
        super().compile(optimizer=optimizer, **kwargs)
        if refine_optimizer is None:
            refine_optimizer = optimizer.__class__.from_config(optimizer.get_config())
        self.refine_optimizer = refine_optimizer
        self.refine_optimizer.build(self.backbone_variables)

    def set_phase(self, phase: str):
        """Selects the phase the next steps run ("refine" or "finetune"); a `PhaseSchedule` calls it in `fit`."""
        super().set_phase(phase)
        self._phase_chosen = True

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`; a `ar2_tf.callbacks.PhaseSchedule` among `callbacks` switches the phases.

        Without one, every step runs the selected phase (`set_phase`; fine-tuning until one is chosen, with a
        warning, since that is not AR2).

        Raises:
            UserError: training would change nothing: every weight is frozen, or, when refinement may run, every
                weight before the feature map (`ar2_tf.method.head.check_trainable`).
        """
        callbacks = list(callbacks or [])
        schedule = next((c.schedule for c in callbacks if isinstance(c, ScheduleCallback)), None)
        if schedule is None and not self._phase_chosen:
            warnings.warn("RepairModel.fit without a PhaseSchedule callback only fine-tunes; add "
                          "ar2_tf.callbacks.PhaseSchedule(refine_steps=N, finetune_steps=M) to the callbacks for "
                          "AR2's refinement.", stacklevel=2)
        refines = schedule.refine_steps > 0 if schedule is not None else self.phase == REFINE
        check_trainable(self.classifier, self.head, refines=refines)
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def train_step(self, data):
        (clean, corrupted), labels = data
        if self.phase == REFINE:
            self._refine(clean, corrupted, labels)
        else:
            self._finetune(clean, corrupted, labels)
        return self.step_results()

    def _refine(self, clean, corrupted, labels):
        batch = tf.shape(clean)[0]
        reference_features = self.reference_backbone(clean, training=False)
        variables = self.backbone_variables
        with tf.GradientTape() as tape:
            features = self.backbone(tf.concat([clean, corrupted], axis=0), training=True)
            logits = self.logits(features)  # the frozen head in inference mode: no dropout in the top-k
            clean_logits, corrupted_logits = logits[:batch], logits[batch:]
            if self.topk_from == "reference":
                topk_logits = self.reference_attention.logits(reference_features)
            else:
                topk_logits = clean_logits
            loss = cam_alignment_loss(
                self.attention.maps, self.reference_attention.maps, features[:batch], features[batch:],
                reference_features, topk_logits, corrupted_logits,
                k=self.k, alpha=self.alpha, normalization=self.cam_normalization)
            scaled = self.refine_optimizer.scale_loss(scale_for_replicas(loss))
        self.refine_optimizer.apply(tape.gradient(scaled, variables), variables)
        self._trackers["align_loss"].update_state(loss)
        self._update_accuracy(labels, clean_logits, corrupted_logits)

    def _finetune(self, clean, corrupted, labels):
        batch = tf.shape(clean)[0]
        variables = self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            features = self.backbone(tf.concat([clean, corrupted], axis=0), training=True)
            logits = self.logits(features, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                tf.concat([labels, labels], axis=0), logits, from_logits=True))
            scaled = self.optimizer.scale_loss(scale_for_replicas(loss))
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self._trackers["ce_loss"].update_state(loss)
        self._update_accuracy(labels, logits[:batch], logits[batch:])

    def test_step(self, data):
        """Validation: the classifier in inference mode on clean (and corrupted) views, cross-entropy and
        accuracies; no weight changes."""
        inputs, labels = data[0], data[1]
        views = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        logits = [self.logits(self.backbone(view, training=False)) for view in views]
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits[0], from_logits=True))
        self._trackers["ce_loss"].update_state(loss)
        self._trackers["clean_accuracy"].update_state(labels, logits[0])
        names = ["ce_loss", "clean_accuracy"]
        if len(logits) > 1:
            self._trackers["corrupted_accuracy"].update_state(labels, logits[1])
            names.append("corrupted_accuracy")
        return {name: self._trackers[name].result() for name in names}

    def _update_accuracy(self, labels, clean_logits, corrupted_logits):
        self._trackers["clean_accuracy"].update_state(labels, clean_logits)
        self._trackers["corrupted_accuracy"].update_state(labels, corrupted_logits)

    def get_config(self):
        return {**super().get_config(), "reference": keras.saving.serialize_keras_object(self.reference),
                "k": self.k, "alpha": self.alpha, "cam_normalization": self.cam_normalization,
                "topk_from": self.topk_from}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["reference"] = keras.saving.deserialize_keras_object(config["reference"])
        config["reference"].trainable = False
        return super().from_config(config)
