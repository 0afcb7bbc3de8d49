"""Model registry: small custom CNNs and torchvision backbones adapted to object patches.

A model takes a float32 batch of patches ``(N, C, rows, columns)`` (2D) or
``(N, C, planes, rows, columns)`` (3D) and returns logits ``(N, n_classes)``; no softmax, the
losses take logits. ``C`` counts the image channels plus the object-mask channel.

Architectures (see :data:`ARCHITECTURES`, :func:`architecture_params`):

``cnn``
    The light-weight network of the Svetlana paper (Table 2), 2D or 3D: ``depth`` blocks of
    convolution -> BatchNorm -> ReLU -> max-pool 2, then global average pooling -> dropout ->
    linear. Every convolution has ``width`` filters: the width stays constant over the blocks
    (no doubling) so that ``width`` is "the number of filters per layer" as in the paper, and
    ``depth=2, width=16, kernel=3`` is exactly the original plugin's smallest network
    (:data:`ORIGINAL_CNN`). It needs patches of at least ``2 ** depth`` along every axis.
``resnet18/34/50/101/152``, ``densenet121/161/169/201``, ``alexnet``
    torchvision models built with ``weights=None`` (nothing is downloaded), first convolution
    replaced for ``C`` input channels, classifier replaced for ``n_classes``, every parameter
    trainable (the original plugin trained a frozen random backbone; we do not). 2D only.
    They accept any patch of at least :data:`MIN_TORCHVISION_PATCH` pixels: ResNets work at
    any size (adaptive pooling), DenseNets need 29 pixels and AlexNet 63, so inputs smaller than
    32 (DenseNet) or 64 (AlexNet) are upsampled bilinearly inside the model (the model stays
    the unmodified torchvision network, so ImageNet weights still fit). ``small_input=True``
    (ResNet, DenseNet) replaces the 7x7 stride-2 stem and its max-pool by a 3x3 stride-1
    convolution, keeping 4x more resolution for small patches at 16x the compute; it is off
    by default because it is slow on a CPU and its stem cannot take ImageNet weights.
    ``pretrained`` is the path of a local ImageNet state dict (``.pth``/``.pt`` or
    ``.safetensors``) of the same torchvision model; see :func:`load_pretrained`.

Model folders (:mod:`svetlana_core.models.folder`) are read and written here only:
:func:`save_model` / :func:`load_model` for a CNN (``model.json`` + ``weights.safetensors`` +
``model.onnx``, nothing pickled), :func:`read_model_meta` and :func:`model_kind` for any model
folder, the random forest's included, without torch. :func:`load_predictor`
(:mod:`~svetlana_core.models.inference`) loads a CNN for prediction: its ONNX graph in ONNX
Runtime on a CPU, without torch; :mod:`~svetlana_core.models.export` writes that graph. The
registry (:data:`ARCHITECTURES`) and the device names (:data:`DEVICES`) need no torch either.
"""

from svetlana_core.lazy import attach

_EXPORTS = {
    'ARCHITECTURES': 'svetlana_core.models.registry',
    'Architecture': 'svetlana_core.models.registry',
    'DEVICES': 'svetlana_core.models.device',
    'FORMAT_VERSION': 'svetlana_core.models.folder',
    'LoadedModel': 'svetlana_core.models.folder',
    'ONNX_FILE': 'svetlana_core.models.inference',
    'OnnxModel': 'svetlana_core.models.inference',
    'MAX_PATCH_SIZE': 'svetlana_core.models.folder',
    'MIN_TORCHVISION_PATCH': 'svetlana_core.models.registry',
    'MODEL_FILE': 'svetlana_core.models.folder',
    'MODEL_KINDS': 'svetlana_core.models.folder',
    'ORIGINAL_CNN': 'svetlana_core.models.registry',
    'Param': 'svetlana_core.models.registry',
    'RF_FORMAT_VERSION': 'svetlana_core.models.folder',
    'SmallCNN': 'svetlana_core.models.cnn',
    'TorchvisionClassifier': 'svetlana_core.models.torchvision_nets',
    'WEIGHTS_FILE': 'svetlana_core.models.folder',
    'adapt_conv_weight': 'svetlana_core.models.torchvision_nets',
    'architecture_params': 'svetlana_core.models.registry',
    'build_model': 'svetlana_core.models.build',
    'claimed_folder': 'svetlana_core.models.folder',
    'check_patch_size': 'svetlana_core.models.registry',
    'count_parameters': 'svetlana_core.models.build',
    'cuda_present': 'svetlana_core.models.inference',
    'cpu_threads': 'svetlana_core.models.device',
    'describe_device': 'svetlana_core.models.device',
    'feature_layer': 'svetlana_core.models.build',
    'library_versions': 'svetlana_core.models.folder',
    'load_model': 'svetlana_core.models.folder',
    'load_onnx': 'svetlana_core.models.inference',
    'load_predictor': 'svetlana_core.models.inference',
    'export_folder': 'svetlana_core.models.export',
    'load_pretrained': 'svetlana_core.models.torchvision_nets',
    'memory_format_for': 'svetlana_core.models.device',
    'min_patch_size': 'svetlana_core.models.registry',
    'model_kind': 'svetlana_core.models.folder',
    'prediction_device': 'svetlana_core.models.inference',
    'read_model_meta': 'svetlana_core.models.folder',
    'read_weights': 'svetlana_core.models.folder',
    'resolve_device': 'svetlana_core.models.device',
    'save_model': 'svetlana_core.models.folder',
    'validate_params': 'svetlana_core.models.registry',
    'write_rf_meta': 'svetlana_core.models.folder',
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
