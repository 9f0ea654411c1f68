"""Training and fine-tuning PerVFI's generators with the authors' recipe.

    LaplacianLoss()(pred, gt)             Laplacian-pyramid L1 (5 levels)
    PerceptualLoss(vgg19)(pred, gt)       VGG19 relu1_1…relu5_1 distance
    training_loss(generator, batch, recipe, noise=None, perceptual=None)
                                          one step's loss terms and outputs ("v00" | "vb")
    scratch_generator(name, network_lf=PATH)  the authors' start: default init + softmax splatting's pyramid
    train(load_config("v00", ["data.root=..."]))   a whole run (python -m pervfi.train)
"""
from .config import load_config
from .engine import train
from .losses import LaplacianLoss, PerceptualLoss
from .scratch import scratch_generator
from .step import RECIPES, recipe_weights, training_loss

__all__ = ["RECIPES", "LaplacianLoss", "PerceptualLoss", "recipe_weights", "training_loss"]
__all__ += ["load_config", "scratch_generator", "train"]
