"""AugMix fine-tuning: cross-entropy on clean images plus the Jensen-Shannon consistency loss.

    L = CE(p_clean, y) + λ · JS(p_clean, p_aug1, p_aug2),
    JS = ⅓ · Σ_i KL(p_i ‖ M),   M = clamp((p_clean + p_aug1 + p_aug2) / 3, 1e-7, 1)

(Hendrycks et al., ICLR 2020, Eq. 1 and google-research/augmix `cifar.py`: λ = 12, KL
averaged over the batch, the mixture clamped before its log.) Batches come from
`ar2_tf.baselines.augmix.augmix_pipeline`: `((clean, augmix_1, augmix_2), labels)`.

`AugMixModel` is a `PhasedTrainer` with one phase, fine-tuning: the schedule callback
of `ar2_tf.runs.repair_run` drives it like `RepairModel`.
"""

import keras
import tensorflow as tf

from ar2_tf.method.phased_trainer import PhasedTrainer, scale_for_replicas

MIXTURE_FLOOR = 1e-7  # the original's clamp of the mixture distribution before its log


def jensen_shannon_consistency(clean_logits, augmix1_logits, augmix2_logits):
    """JS(p_clean, p_aug1, p_aug2) = ⅓ Σ_i KL(p_i ‖ M), batch mean; M clamped to [1e-7, 1]."""
    probabilities = [tf.nn.softmax(tf.cast(logits, tf.float32)) for logits in
                     (clean_logits, augmix1_logits, augmix2_logits)]
    log_mixture = tf.math.log(tf.clip_by_value(tf.add_n(probabilities) / 3.0, MIXTURE_FLOOR, 1.0))
    # KL(p ‖ M) = Σ p (log p − log M), with 0 · log 0 = 0 (torch's kl_div does the same).
    divergences = [tf.reduce_sum(tf.math.xlogy(p, p) - p * log_mixture, axis=-1) for p in probabilities]
    return tf.reduce_mean(tf.add_n(divergences) / 3.0)


def augmix_loss(labels, clean_logits, augmix1_logits, augmix2_logits, jsd_weight=12.0):
    """(total, cross-entropy, JS): CE on the clean view only, as in the original."""
    cross_entropy = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        labels, tf.cast(clean_logits, tf.float32), from_logits=True))
    consistency = jensen_shannon_consistency(clean_logits, augmix1_logits, augmix2_logits)
    return cross_entropy + jsd_weight * consistency, cross_entropy, consistency


class AugMixModel(PhasedTrainer):
    """Fine-tunes `classifier` in place with AugMix's loss (all variables, one optimizer).

    Args:
        classifier: the pretrained Keras classifier; its weights are updated.
        jsd_weight: λ, the weight of the Jensen-Shannon consistency term (original: 12).
        feature_layer, dense_layer: optional overrides of the head search (see `ar2_tf.method.head`);
            the loss reads logits before the head's softmax, as AR2's fine-tuning does.

    Example:
        model = AugMixModel(keras.saving.load_model("resnet20.h5"))
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        model.fit(augmix_pipeline(train, batch_size=128, preprocessing="unit"), epochs=8, steps_per_epoch=39)

    Reference:
        Hendrycks et al., AugMix: a simple data processing method to improve robustness and
        uncertainty, ICLR 2020.
    """

    def __init__(self, classifier, jsd_weight=12.0, feature_layer=None, dense_layer=None, **kwargs):
        super().__init__(classifier, feature_layer, dense_layer, **kwargs)
        self.jsd_weight = float(jsd_weight)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "ce_loss", "jsd_loss")}
        self._trackers.update({name: keras.metrics.SparseCategoricalAccuracy(name=name)
                               for name in ("clean_accuracy", "augmix_accuracy")})

    def train_step(self, data):
        (clean, augmix1, augmix2), labels = data
        variables = self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            # One forward pass over the three views, as the original (batch-norm statistics of all three).
            features = self.backbone(tf.concat([clean, augmix1, augmix2], axis=0), training=True)
            logits = self.logits(features, training=True)
            clean_logits, augmix1_logits, augmix2_logits = tf.split(logits, 3)
            loss, cross_entropy, consistency = augmix_loss(labels, clean_logits, augmix1_logits, augmix2_logits,
                                                           self.jsd_weight)
            scaled = self.optimizer.scale_loss(scale_for_replicas(loss))
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        for name, value in (("loss", loss), ("ce_loss", cross_entropy), ("jsd_loss", consistency)):
            self._trackers[name].update_state(value)
        self._trackers["clean_accuracy"].update_state(labels, clean_logits)
        self._trackers["augmix_accuracy"].update_state(tf.concat([labels, labels], axis=0),
                                                       tf.concat([augmix1_logits, augmix2_logits], axis=0))
        return self.step_results()

    def get_config(self):
        return {**super().get_config(), "jsd_weight": self.jsd_weight}
