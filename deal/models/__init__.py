"""Networks: DeepLabv3+ MobileNetV2 (segmentation) and the difficulty branch."""

from deal.models.deeplab import DeepLabV3Plus, SegmentationOutput, load_imagenet_encoder
from deal.models.difficulty import DifficultyHead, ProbabilityAttention, naive_probability_attention
from deal.models.deal_net import DEALNet, DEALOutput, ModelConfig, build_model, load_model

__all__ = [
    "DeepLabV3Plus",
    "SegmentationOutput",
    "load_imagenet_encoder",
    "DifficultyHead",
    "ProbabilityAttention",
    "naive_probability_attention",
    "DEALNet",
    "DEALOutput",
    "ModelConfig",
    "build_model",
    "load_model",
]
