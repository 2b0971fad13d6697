"""Catalogue text for every diagnosis ID (see :mod:`dldoctor.core.catalogue`).

One :class:`~dldoctor.core.catalogue.Entry` per :class:`~dldoctor.core.ids.DiagnosisId`
member, in the enum's order. ``explains`` always points from a root cause to the
symptoms it produces downstream; the graph it forms has no cycles (the tests check).
Crashes explain nothing: they stop the run before any symptom can be measured.
"""

from __future__ import annotations

from dldoctor.core.entry import Entry
from dldoctor.core.ids import DiagnosisId as D
from dldoctor.core.ids import Family as F

ENTRIES: tuple[Entry, ...] = (
    # ------------------------------------------------------------------ crashes
    Entry(
        id=D.SHAPE_MISMATCH,
        family=F.CRASH,
        title="A layer gets a tensor of a shape it cannot take",
        explanation=(
            "The forward pass or the loss raised because a tensor's shape does not fit the "
            "operation. Typical causes: the output of the last convolution is passed to an "
            "nn.Linear without being flattened, a layer's in_features or in_channels does not "
            "match what the previous layer actually produces (often after changing the input "
            "resolution or a kernel size), a reduction was taken over the wrong dimension, or "
            "outputs and targets disagree on the batch size. Nothing can be learned until the "
            "shapes line up, so this is fixed first."
        ),
        evidence=(
            "the module that raised, the shape it received and the shape it expects",
            "the trace of shapes through the modules that ran before it",
        ),
        fixes=(
            "Flatten after the last convolution (torch.flatten(x, 1) or nn.Flatten()) before "
            "the first linear layer.",
            "Set the layer's in_features / in_channels to what the previous layer produces "
            "(or use nn.LazyLinear / nn.LazyConv2d to infer it).",
            "Check the dimension of every sum/mean/softmax (dim=...) against the tensor layout.",
            "Check that outputs and targets have the same batch size (drop_last or a mismatched "
            "collate function can break this).",
        ),
    ),
    Entry(
        id=D.DTYPE_MISMATCH,
        family=F.CRASH,
        title="A tensor has the wrong dtype for the operation or loss",
        explanation=(
            "An operation received a tensor of a type it cannot use. The usual suspects are "
            "images left as uint8 straight from a decoder or a NumPy array, float64 tensors "
            "coming from NumPy (torch.from_numpy keeps float64) while the model's weights are "
            "float32, class targets stored as float for nn.CrossEntropyLoss (which wants int64 "
            "class indices), or integer targets given to nn.MSELoss or nn.BCEWithLogitsLoss, "
            "which want floating-point targets. The run stops, so it must be fixed before any "
            "other check means anything."
        ),
        evidence=(
            "the dtypes of the inputs, targets and parameters at the operation that raised",
            "the dtype each loss expects for its input and its target",
        ),
        fixes=(
            "Convert inputs to float32 in the dataset or transform (x.float(), or "
            "transforms.ToTensor() / v2.ToDtype(torch.float32, scale=True) for images).",
            "Give nn.CrossEntropyLoss / nn.NLLLoss int64 class indices (y.long()); give "
            "nn.MSELoss / nn.BCEWithLogitsLoss float targets (y.float()).",
            "Cast NumPy data once with torch.as_tensor(a, dtype=torch.float32) instead of "
            "keeping float64.",
            "Under mixed precision, let torch.autocast pick dtypes instead of casting by hand "
            "inside the model.",
        ),
    ),
    Entry(
        id=D.DEVICE_MISMATCH,
        family=F.CRASH,
        title="Model, inputs or targets live on different devices",
        explanation=(
            "An operation mixed tensors on different devices, for example a model moved with "
            "model.to('cuda') fed a batch still on the CPU, targets left on the CPU while the "
            "outputs are on the GPU, a tensor created inside forward() with torch.zeros(...) "
            "and no device argument, or a plain tensor attribute that model.to() does not move "
            "because it was not registered as a buffer. PyTorch refuses to compute across "
            "devices, so the run stops."
        ),
        evidence=(
            "the device of each operand at the operation that raised",
            "the devices of the model's parameters and buffers versus those of the batch",
        ),
        fixes=(
            "Move every batch to the model's device in the loop: x, y = x.to(device), y.to(device).",
            "Create tensors inside forward() on the input's device (torch.zeros(..., "
            "device=x.device) or x.new_zeros(...)).",
            "Register constant tensors with self.register_buffer(...) so model.to(device) moves them.",
            "Move the model before building the optimiser, and the loss module too if it holds "
            "tensors (class weights).",
        ),
    ),
    Entry(
        id=D.OUT_OF_MEMORY,
        family=F.CRASH,
        title="A batch, a layer or the data set does not fit in memory",
        explanation=(
            "The run ran out of GPU or host memory. Activations grow with the batch size and "
            "the input resolution, a single huge nn.Linear after an unpooled feature map can "
            "hold hundreds of millions of weights, a whole data set loaded into memory (or onto "
            "the GPU) at once can fill it, and several copies of a model or of the optimiser "
            "state created in one process add up. dldoctor searches for the largest batch size "
            "that fits so the run can proceed at all."
        ),
        evidence=(
            "the CUDA out-of-memory / MemoryError exception and where it was raised",
            "the largest batch size that completes a forward and backward pass",
            "parameter, gradient, optimiser-state and activation memory per module",
        ),
        fixes=(
            "Reduce the batch size (at most the largest size dldoctor found to fit).",
            "Keep the effective batch size with gradient accumulation: call optimizer.step() "
            "every k micro-batches and divide the loss by k.",
            "Train in mixed precision with torch.autocast(device_type, dtype=torch.bfloat16 or "
            "torch.float16) (with torch.amp.GradScaler for float16).",
            "Trade compute for memory with activation checkpointing "
            "(torch.utils.checkpoint.checkpoint) on the largest blocks.",
            "Shrink the biggest layer (pool before the classifier) and load data lazily in a "
            "Dataset instead of holding it all in memory.",
        ),
    ),
    Entry(
        id=D.LABEL_OUT_OF_RANGE,
        family=F.CRASH,
        title="Targets fall outside [0, num_classes) or outputs have the wrong width",
        explanation=(
            "A classification loss got a class index that the model's output cannot represent. "
            "It happens when labels are 1-based (1..C) while the last nn.Linear has C outputs, "
            "when the data set contains a class the head was not sized for, when a padding or "
            "'ignore' label such as -1 or 255 is used without ignore_index, or when the head's "
            "out_features was copied from another task. On the GPU it shows up as a "
            "device-side assert that is hard to trace; on the CPU as an IndexError."
        ),
        evidence=(
            "the minimum and maximum target values versus the width of the model's output",
            "the set of distinct labels in the data set",
            "targets a loss's contract rules out: class indices into a binary cross-entropy, float "
            "target rows that CrossEntropyLoss or KLDivLoss cannot read as distributions",
        ),
        fixes=(
            "Set the last layer's out_features to the number of classes in the data.",
            "Remap labels to 0..C-1 (e.g. y - 1 for 1-based labels, or a label-to-index dict).",
            "Pass ignore_index=... to nn.CrossEntropyLoss for padding or 'unknown' labels.",
            "Re-run on the CPU (or with CUDA_LAUNCH_BLOCKING=1) to get a readable error if it "
            "persists.",
        ),
    ),
    Entry(
        id=D.ENTRYPOINT_ERROR,
        family=F.CRASH,
        title="The spec or training script fails before training starts",
        explanation=(
            "dldoctor could not get as far as the first training step: the user's spec or "
            "script failed to import, a factory function raised, a file path or argument is "
            "wrong, or the data set could not be built. Until the entry point loads, none of "
            "the other checks can run, so the traceback is the first thing to look at."
        ),
        evidence=(
            "the exception and traceback raised while loading the spec or script",
            "which stage failed: import, model construction, data set construction or "
            "the first batch",
        ),
        fixes=(
            "Read the traceback from the bottom up and fix the first frame that is in your code.",
            "Run the script directly (python your_script.py) to reproduce the error outside "
            "dldoctor.",
            "Check that the names the spec points to (module:function) exist and return a "
            "model, a data set and a loss.",
            "Check file paths, environment variables and installed package versions.",
        ),
    ),
    # ------------------------------------------------------ silent wiring bugs
    Entry(
        id=D.LOSS_INPUT_PROBABILITIES,
        family=F.WIRING,
        title="The loss gets probabilities where it expects logits (or vice versa)",
        explanation=(
            "The model's output is in the wrong space for the loss. The classic case is an "
            "nn.Softmax as the model's last layer followed by nn.CrossEntropyLoss, which "
            "applies log-softmax itself: the loss then sees values squashed into [0, 1], its "
            "gradients become tiny and training crawls or stalls. The same happens with "
            "nn.Sigmoid before nn.BCEWithLogitsLoss. The mirror-image bug feeds raw logits to "
            "nn.NLLLoss (which expects log-probabilities) or to nn.BCELoss (which expects "
            "probabilities), giving a loss that can go negative or a meaningless objective. "
            "The program runs without any error, which makes it one of the most common silent "
            "bugs."
        ),
        evidence=(
            "model outputs are non-negative and each row sums to 1 (or lie in [0, 1] for "
            "binary losses)",
            "the last module is a Softmax/Sigmoid (or the output is unbounded while the loss "
            "is NLLLoss/BCELoss)",
            "the loss at initialisation differs from its expected value and its gradients "
            "are unusually small",
        ),
        fixes=(
            "Remove the final nn.Softmax / nn.Sigmoid and return logits; nn.CrossEntropyLoss "
            "and nn.BCEWithLogitsLoss apply it themselves.",
            "If the model must output probabilities at inference, apply torch.softmax / "
            "torch.sigmoid only outside the training loss (e.g. in a predict() method).",
            "With nn.NLLLoss, end the model with nn.LogSoftmax(dim=1) (or switch to "
            "nn.CrossEntropyLoss on logits).",
            "Replace nn.BCELoss on a sigmoid output with nn.BCEWithLogitsLoss on logits, "
            "which is also numerically safer.",
        ),
        explains=(
            D.LR_TOO_LOW,
            D.VANISHING_GRADIENTS,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.LOSS_BROADCAST,
        family=F.WIRING,
        title="Output and target shapes differ and broadcast inside the loss",
        explanation=(
            "The loss received an output and a target of different shapes that PyTorch "
            "silently broadcast together instead of raising. The common case is a regression "
            "head that returns [N, 1] compared with targets of shape [N] in nn.MSELoss or "
            "nn.L1Loss: the difference broadcasts to [N, N], every prediction is compared "
            "with every target, and the best the model can do is predict the mean. PyTorch "
            "only warns about it, once. The loss decreases a little and then plateaus, so "
            "it looks like an optimisation problem when it is a wiring bug."
        ),
        evidence=(
            "the output and target shapes passed to the loss differ but are broadcastable",
            "the element count of the broadcast difference exceeds the batch size",
            "predictions collapse towards the target mean",
        ),
        fixes=(
            "Make the shapes equal before the loss: out.squeeze(-1) or y.unsqueeze(-1) / "
            "y.view_as(out).",
            "Assert the shapes in the training step (assert out.shape == y.shape) so the bug "
            "cannot come back.",
            "Turn the broadcast warning into an error while debugging "
            "(warnings.simplefilter('error', UserWarning)).",
        ),
        explains=(
            D.MODEL_TOO_SMALL,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.BATCH_MIXING,
        family=F.WIRING,
        title="One sample's output depends on the other samples in the batch",
        explanation=(
            "Samples in a batch should be processed independently (batch norm in training "
            "mode aside), but here changing one sample changes the outputs for the others. "
            "It comes from a softmax or normalisation taken over dim=0 (the batch) instead of "
            "the feature dimension, from x.view(...) or x.reshape(...) used where a "
            "permute/transpose was needed (e.g. turning [N, C, L] into [N, L, C] with view), "
            "or from a sequence model fed batch-first data with batch_first=False. The model "
            "then learns from scrambled information, and its predictions depend on what else "
            "happens to be in the batch."
        ),
        evidence=(
            "the gradient of one sample's output with respect to other samples' inputs is "
            "non-zero (with the model in eval mode)",
            "outputs for a fixed sample change when the rest of the batch is changed or the "
            "batch is permuted",
            "the module where the dependence first appears",
        ),
        fixes=(
            "Check every softmax / normalisation call's dim argument (e.g. softmax(dim=1) or "
            "dim=-1, never dim=0 for per-sample outputs).",
            "Replace view/reshape used to reorder axes with permute(...) or transpose(...) "
            "(followed by .contiguous() if needed).",
            "Pass batch_first=True to nn.LSTM / nn.GRU / nn.TransformerEncoderLayer when the "
            "data is [N, L, ...].",
            "Re-run the batch-independence check after the change on a single module at a "
            "time to confirm.",
        ),
        explains=(
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.LOSS_SIGN_FLIPPED,
        family=F.WIRING,
        title="The optimiser maximises the loss instead of minimising it",
        explanation=(
            "The update moves the parameters uphill. It happens when the loss is negated "
            "(returning -loss, e.g. from a log-likelihood written as a reward), when an "
            "objective meant to be maximised is passed to a minimiser without flipping it, "
            "when the optimiser is built with maximize=True, or when a hand-written update "
            "adds the gradient (p += lr * p.grad) instead of subtracting it. The loss then "
            "rises steadily, often until it explodes, which can look like a too-high "
            "learning rate."
        ),
        evidence=(
            "the loss rises monotonically when overfitting a single batch, at any learning rate",
            "the loss is higher at a perfect prediction (outputs equal to the targets) than at the "
            "model's outputs: a similarity or correlation returned without its minus sign",
            "a small step along the computed update increases the loss",
            "the optimiser has maximize=True or the loss is negated in the step",
        ),
        fixes=(
            "Minimise the loss: call loss.backward() on the loss itself, not on -loss "
            "(to maximise a reward, minimise its negative once).",
            "Remove maximize=True from the optimiser unless the objective is truly a reward.",
            "In a hand-written update, subtract the gradient: p -= lr * p.grad inside "
            "torch.no_grad().",
        ),
        explains=(
            D.LR_TOO_HIGH,
            D.EXPLODING_GRADIENTS,
            D.NUMERICAL_INSTABILITY,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.NO_GRADIENT_FLOW,
        family=F.WIRING,
        title="Some trainable parameters get no or zero gradient",
        explanation=(
            "Part of the model never learns because the backward pass does not reach it. "
            "Typical causes: a tensor is cut from the graph with .detach(), .item(), .numpy() "
            "or by going through .data; part of the forward pass runs under torch.no_grad(); "
            "a layer was frozen with requires_grad=False and never unfrozen; a layer is "
            "defined in __init__ but never used in forward(); layers are kept in a plain "
            "Python list instead of nn.ModuleList so the optimiser never sees them; or the "
            "optimiser was built from a different set of parameters. The rest of the model "
            "still trains, so the loss moves, just not as far as it should."
        ),
        evidence=(
            "parameters with requires_grad=True whose .grad is None or exactly zero after "
            "backward()",
            "parameters that do not change after an optimiser step",
            "modules that are not reached by the forward pass, or parameters missing from "
            "the optimiser's param_groups",
        ),
        fixes=(
            "Remove .detach(), .data, .item() or .numpy() from the path between the "
            "parameters and the loss, and any torch.no_grad() around the training forward.",
            "Hold sub-modules in nn.ModuleList / nn.ModuleDict (not a Python list or dict) "
            "and build the optimiser from model.parameters() after all layers exist.",
            "Set requires_grad=True on parameters meant to train (check frozen backbones).",
            "Use or remove layers that forward() never calls.",
        ),
        explains=(
            D.LR_TOO_LOW,
            D.VANISHING_GRADIENTS,
            D.MODEL_TOO_SMALL,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.INPUT_NOT_NORMALIZED,
        family=F.WIRING,
        title="Inputs are far from unit scale",
        explanation=(
            "Network defaults (initialisation schemes, learning rates, activation ranges) "
            "assume inputs of roughly zero mean and unit variance. Raw 0-255 pixel values, "
            "features with very different units (age in years next to income in dollars), or "
            "inputs normalised twice (ToTensor followed by another division by 255) break that "
            "assumption: the first layer's pre-activations are huge or tiny, activations "
            "saturate or die, and no single learning rate suits all the weights, so training "
            "is slow or unstable."
        ),
        evidence=(
            "per-feature (or per-channel) input mean and standard deviation far from 0 and 1",
            "the ratio between the largest and smallest feature scales",
            "input range, e.g. values up to 255 or all below 0.01",
        ),
        fixes=(
            "Standardise inputs with statistics from the training set: "
            "transforms.Normalize(mean, std) for images, (x - mean) / std per feature for tables.",
            "For images, scale to [0, 1] exactly once (ToTensor or "
            "v2.ToDtype(torch.float32, scale=True)) and do not divide by 255 again.",
            "Compute the statistics on the training split only and reuse them for "
            "validation and test.",
            "Log-transform heavy-tailed features before standardising them.",
        ),
        explains=(
            D.BAD_INITIALIZATION,
            D.LR_TOO_HIGH,
            D.LR_TOO_LOW,
            D.EXPLODING_GRADIENTS,
            D.VANISHING_GRADIENTS,
            D.DEAD_ACTIVATIONS,
            D.UNDERFITTING,
        ),
    ),
    Entry(
        id=D.LABELS_CORRUPTED,
        family=F.WIRING,
        title="Targets do not match their inputs",
        explanation=(
            "The pairing between inputs and targets is broken, so there is little or nothing "
            "to learn. It arises when inputs and labels are shuffled separately (two "
            "independent shuffles or a random_split applied to each), when a sort, filter or "
            "merge reorders one but not the other, when the class-name-to-index mapping "
            "differs between training and evaluation, or when an off-by-one shift misaligns "
            "sequences and labels. The model cannot beat an input-independent baseline on "
            "held-out data, although a large model may still memorise the training labels."
        ),
        evidence=(
            "validation performance no better than an input-independent baseline (majority "
            "class / mean)",
            "a single batch can only be fitted by memorisation, as fast as with randomly "
            "permuted labels",
            "a simple model (linear / k-NN on inputs) finds no relation between inputs and targets",
        ),
        fixes=(
            "Shuffle inputs and targets together: one Dataset returning (x, y) pairs with a "
            "DataLoader(shuffle=True), never two separate shuffles.",
            "Look at a handful of samples with their labels (plot images with class names) "
            "to confirm the pairing.",
            "Use the same class-to-index mapping everywhere (save it with the model; e.g. "
            "ImageFolder.class_to_idx).",
            "Check every sort, filter, merge or split for one that touches inputs and "
            "targets differently.",
        ),
        explains=(
            D.LABEL_NOISE,
            D.MODEL_TOO_SMALL,
            D.UNDERFITTING,
            D.OVERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.WRONG_MODE,
        family=F.WIRING,
        title="Train/eval mode is wrong for the phase",
        explanation=(
            "Dropout and batch norm behave differently in training and evaluation, and "
            "PyTorch relies on model.train() / model.eval() to switch them. Forgetting "
            "model.eval() before validation leaves dropout active and makes batch norm use "
            "the statistics of the evaluation batch, so metrics are noisy and worse, "
            "especially with small batches. Forgetting model.train() after validation "
            "trains with dropout off and frozen batch-norm statistics. A related bug is "
            "calling F.dropout(x, p) in forward() without training=self.training, which keeps "
            "dropout on at evaluation whatever the mode."
        ),
        evidence=(
            "the model's .training flag during training steps and during evaluation",
            "evaluation outputs for the same input differ between two runs (dropout still active)",
            "metrics change when the same data is evaluated in the other mode",
        ),
        fixes=(
            "Call model.eval() before evaluation and model.train() at the start of each "
            "training epoch.",
            "Use nn.Dropout modules, or pass training=self.training to F.dropout(x, p, "
            "training=self.training).",
            "Wrap evaluation in torch.inference_mode() (or torch.no_grad()) in addition to "
            "model.eval(); it does not switch the mode by itself.",
        ),
        explains=(
            D.OVERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.STALE_GRADIENTS,
        family=F.WIRING,
        title="Gradients are not zeroed between optimiser steps",
        explanation=(
            "PyTorch adds each backward() into the existing .grad instead of overwriting it. "
            "Without optimizer.zero_grad() (or model.zero_grad()) before each backward, every "
            "step uses the sum of all past gradients, so the effective step size grows with "
            "time and the direction lags behind the current batch. It often comes from "
            "moving zero_grad() outside the loop, calling it after backward() but before "
            "step(), or zeroing one optimiser's parameters when there are two. The loss may "
            "first fall, then oscillate or blow up."
        ),
        evidence=(
            "the gradient norm before backward() is non-zero at the start of a step",
            "gradient norms grow roughly linearly with the step count",
            "a training step's update equals the sum of the current and past gradients",
        ),
        fixes=(
            "Call optimizer.zero_grad(set_to_none=True) once per step, before loss.backward().",
            "With several optimisers, zero each one (or call model.zero_grad()).",
            "If accumulating on purpose, zero after every k-th optimizer.step() and divide "
            "the loss by k.",
            "In a custom optimiser, make zero_grad() clear p.grad for every parameter of every "
            "param group (p.grad = None, or p.grad.zero_() when set_to_none=False).",
        ),
        explains=(
            D.LR_TOO_HIGH,
            D.EXPLODING_GRADIENTS,
            D.NUMERICAL_INSTABILITY,
            D.UNDERFITTING,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.BAD_INITIALIZATION,
        family=F.WIRING,
        title="Initial weights make activations vanish, explode or saturate",
        explanation=(
            "At step 0 the signal should keep roughly the same scale from layer to layer and "
            "the loss should sit near its expected value (about ln(C) for balanced C-class "
            "cross-entropy). Weights drawn from a fixed N(0, 1) or all zeros, an "
            "initialisation scheme that does not match the activation (Xavier for deep ReLU "
            "stacks), or a final layer with large weights or a large bias break this: "
            "activations shrink or grow geometrically with depth, sigmoid/tanh units saturate, "
            "and the first updates are spent undoing the initialisation, if they ever do."
        ),
        evidence=(
            "per-layer activation standard deviation at step 0 shrinking or growing with depth",
            "the fraction of saturated or dead units at step 0",
            "the loss at initialisation compared with its expected value (e.g. ln(num_classes))",
        ),
        fixes=(
            "Use an initialisation matched to the activation: nn.init.kaiming_normal_(w, "
            "nonlinearity='relu') for ReLU, nn.init.xavier_uniform_ for tanh/sigmoid "
            "(apply with model.apply(fn)).",
            "Keep PyTorch's default layer initialisation unless you have a reason; remove "
            "custom init code that uses fixed N(0, 1) or constant weights.",
            "Initialise the last layer small (or zero) and set its bias to the log of the "
            "class priors so the initial loss matches its expected value.",
            "Add normalisation layers (nn.BatchNorm / nn.LayerNorm) or residual connections "
            "in deep stacks.",
        ),
        explains=(
            D.LR_TOO_LOW,
            D.NUMERICAL_INSTABILITY,
            D.EXPLODING_GRADIENTS,
            D.VANISHING_GRADIENTS,
            D.DEAD_ACTIVATIONS,
            D.UNDERFITTING,
        ),
    ),
    # --------------------------------------------------- optimisation dynamics
    Entry(
        id=D.LR_TOO_HIGH,
        family=F.OPTIMISATION,
        title="The learning rate is too high",
        explanation=(
            "Each update overshoots: the loss rises, oscillates or explodes instead of "
            "settling. It is common when a learning rate tuned for one optimiser is reused "
            "with another (an SGD-style 0.1 with Adam), when the batch size or model changes "
            "without re-tuning, or when there is no warm-up for a large model. Large steps "
            "can also push ReLU units into a region where they never fire again, or produce "
            "overflow. dldoctor confirms it by showing a smaller learning rate fixes the curve."
        ),
        evidence=(
            "the loss rises, oscillates or diverges when overfitting a single batch",
            "the same run with a smaller learning rate (a short range test) decreases steadily",
            "the ratio of update size to weight size per step is large (well above ~1e-3)",
        ),
        fixes=(
            "Lower the learning rate, by a factor of 3-10 at a time, or pick it with a short "
            "learning-rate range test.",
            "Add a warm-up (torch.optim.lr_scheduler.LinearLR followed by the main schedule "
            "via SequentialLR).",
            "Use typical defaults as a starting point: about 1e-3 for Adam/AdamW, 0.01-0.1 for "
            "SGD with momentum.",
            "Clip gradients (torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)) to "
            "limit the worst steps.",
        ),
        explains=(
            D.NUMERICAL_INSTABILITY,
            D.EXPLODING_GRADIENTS,
            D.DEAD_ACTIVATIONS,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
        ),
    ),
    Entry(
        id=D.LR_TOO_LOW,
        family=F.OPTIMISATION,
        title="The learning rate is too low",
        explanation=(
            "Updates are so small that the loss barely moves within the training budget. It "
            "happens when a learning rate is chosen for a different optimiser (an Adam-style "
            "1e-4 or 1e-5 used with plain SGD), when a scheduler decays it too early or too "
            "fast, or when the loss is scaled down (averaged twice, divided by a large "
            "constant). The model looks as if it lacks capacity or data when it has simply "
            "not been trained yet. dldoctor confirms it by showing a larger learning rate "
            "fixes the curve."
        ),
        evidence=(
            "the training loss barely changes over many steps when overfitting a single batch",
            "the same run with a larger learning rate (a short range test) decreases faster",
            "the ratio of update size to weight size per step is tiny (well below ~1e-3)",
        ),
        fixes=(
            "Raise the learning rate by a factor of 3-10 at a time, or pick it with a short "
            "learning-rate range test.",
            "Check the scheduler: print scheduler.get_last_lr() and make sure it is stepped "
            "once per epoch or per step as intended.",
            "Switch to an adaptive optimiser (torch.optim.AdamW) if plain SGD stalls.",
            "Check that the loss is not scaled down (reduction='mean' combined with a further "
            "division by the batch size).",
        ),
        explains=(
            D.MODEL_TOO_SMALL,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
        ),
    ),
    Entry(
        id=D.NUMERICAL_INSTABILITY,
        family=F.OPTIMISATION,
        title="NaN or Inf values appear during training",
        explanation=(
            "A computation produced a non-finite number that then spreads to the loss and the "
            "weights. Typical sources: torch.log of a value that reached 0 (a hand-written "
            "cross-entropy on softmax output), torch.exp of a large number, division by a "
            "standard deviation or a count that can be zero, sqrt of zero in the backward "
            "pass, or float16 overflow beyond 65504 under mixed precision. Once a NaN reaches "
            "a weight, every later output is NaN. dldoctor reports the first module whose "
            "output became non-finite."
        ),
        evidence=(
            "the first module (forward or backward) whose output contains NaN/Inf",
            "the step at which the loss or a gradient first became non-finite, and that a smaller "
            "learning rate only delays it (the same operation turns non-finite later)",
            "value ranges just before that step (e.g. inputs to log/exp/div)",
        ),
        fixes=(
            "Use the fused, stable functions: F.cross_entropy / F.log_softmax / "
            "F.binary_cross_entropy_with_logits / torch.logsumexp instead of log(softmax(x)).",
            "Add an epsilon where something can reach zero (x / (std + 1e-8), "
            "torch.log(x.clamp_min(1e-8))).",
            "Under float16 autocast use torch.amp.GradScaler, or prefer bfloat16.",
            "Localise the source with torch.autograd.set_detect_anomaly(True) on a short run.",
            "Lower the learning rate or clip gradients if values grow before they overflow.",
        ),
        explains=(
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
        ),
    ),
    Entry(
        id=D.EXPLODING_GRADIENTS,
        family=F.OPTIMISATION,
        title="The gradient norm grows without bound",
        explanation=(
            "Gradients get larger from step to step, or from the last layer back to the first, "
            "until updates throw the weights far away and the loss jumps or overflows. Deep "
            "plain stacks without normalisation, recurrent networks unrolled over long "
            "sequences, weights that start or become too large, and a learning rate that is "
            "too high all produce it."
        ),
        evidence=(
            "the total gradient norm over steps, growing by orders of magnitude",
            "per-layer gradient norms growing towards the input layers",
            "loss spikes that coincide with gradient-norm spikes",
        ),
        fixes=(
            "Clip the gradient norm before optimizer.step(): "
            "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).",
            "Lower the learning rate (and add warm-up).",
            "Add normalisation (nn.LayerNorm / nn.BatchNorm) or residual connections.",
            "For RNNs, use nn.LSTM / nn.GRU and truncate backpropagation through time.",
        ),
        explains=(
            D.NUMERICAL_INSTABILITY,
            D.UNDERFITTING,
        ),
    ),
    Entry(
        id=D.VANISHING_GRADIENTS,
        family=F.OPTIMISATION,
        title="Gradients shrink towards zero in the early layers",
        explanation=(
            "The gradient reaching the first layers is orders of magnitude smaller than at "
            "the last ones, so the early layers barely train and the network behaves like a "
            "shallow one on fixed random features. Deep stacks of nn.Sigmoid or nn.Tanh, "
            "saturated units, very small initial weights and long recurrent chains are the "
            "usual causes."
        ),
        evidence=(
            "per-layer gradient norms falling by orders of magnitude towards the input",
            "the ratio of update size to weight size in the first layers is near zero",
            "the share of saturated activations in the layers behind them",
        ),
        fixes=(
            "Use ReLU-family activations (nn.ReLU, nn.GELU, nn.SiLU) instead of sigmoid/tanh "
            "in hidden layers.",
            "Initialise for the activation (nn.init.kaiming_normal_ for ReLU).",
            "Add residual connections and normalisation layers (nn.BatchNorm2d, nn.LayerNorm).",
            "For sequences, use nn.LSTM / nn.GRU or attention rather than a plain nn.RNN.",
        ),
        explains=(
            D.MODEL_TOO_SMALL,
            D.LR_TOO_LOW,
            D.UNDERFITTING,
        ),
    ),
    Entry(
        id=D.DEAD_ACTIVATIONS,
        family=F.OPTIMISATION,
        title="Many units never activate or are saturated",
        explanation=(
            "A large share of units outputs the same value for every input: ReLU units whose "
            "pre-activation is negative for all data (so they get no gradient and never "
            "recover), or sigmoid/tanh units pinned at their limits. Too large a learning "
            "rate or a large negative bias can kill ReLUs, and unscaled inputs or a poor "
            "initialisation can saturate sigmoid/tanh. Dead units waste capacity and block "
            "gradient flow through them. At the output layer, a bounded activation (a sigmoid, "
            "tanh or ReLU after the last layer) whose range cannot reach the targets saturates "
            "the same way on every sample it cannot fit."
        ),
        evidence=(
            "the fraction of ReLU units that are zero for every sample of a batch, per layer",
            "the fraction of sigmoid/tanh outputs within a small margin of their limits",
            "how these fractions change over training (rising after a loss spike)",
            "the share of targets outside the output activation's range, and the short run "
            "repeated without that activation",
        ),
        fixes=(
            "Lower the learning rate (dead ReLUs often follow a large update).",
            "Use nn.LeakyReLU, nn.GELU or nn.ELU instead of nn.ReLU.",
            "Initialise with nn.init.kaiming_normal_ and zero (not negative) biases.",
            "Normalise inputs and add nn.BatchNorm / nn.LayerNorm before the activations.",
        ),
        explains=(
            D.VANISHING_GRADIENTS,
            D.MODEL_TOO_SMALL,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
        ),
    ),
    Entry(
        id=D.OVER_REGULARIZATION,
        family=F.OPTIMISATION,
        title="Regularisation is so strong the model cannot fit one batch",
        explanation=(
            "The penalty outweighs the data term. Typical cases: weight_decay set to 0.1 or "
            "more with Adam (where it acts as a strong L2 term), dropout rates like 0.5-0.9 on "
            "every layer of a small model, a large label-smoothing value, or an auxiliary "
            "penalty whose weight is far larger than the main loss. The model is pulled "
            "towards trivial, constant predictions and cannot even overfit a single batch."
        ),
        evidence=(
            "a single batch cannot be fitted with regularisation on but can with it off",
            "the penalty term's share of the total loss",
            "weight norms shrinking towards zero during training",
        ),
        fixes=(
            "Turn regularisation off to overfit one batch first, then add it back gradually.",
            "Lower weight_decay (e.g. 1e-4 to 1e-2 with torch.optim.AdamW rather than "
            "torch.optim.Adam's L2-style weight_decay) and exclude biases and normalisation "
            "weights from it.",
            "Lower dropout rates (e.g. 0.1-0.3) and remove dropout from small models.",
            "Reduce the weight of auxiliary penalties and label_smoothing.",
        ),
        explains=(
            D.MODEL_TOO_SMALL,
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
        ),
    ),
    Entry(
        id=D.MODEL_TOO_SMALL,
        family=F.OPTIMISATION,
        title="The model lacks capacity to fit the data",
        explanation=(
            "Even with healthy optimisation, the model is too small or too constrained for "
            "the task: too few layers or units, a bottleneck layer that is too narrow, "
            "inputs downsampled too aggressively, or a linear model for a non-linear problem. "
            "Training error stays well above what is achievable, and a larger model of the "
            "same kind does clearly better."
        ),
        evidence=(
            "the training loss plateaus well above the achievable error with a healthy "
            "learning rate and gradient flow",
            "a wider or deeper variant fits the same data clearly better",
        ),
        fixes=(
            "Make the model bigger: more units per layer, then more layers.",
            "Remove bottlenecks (widen the narrowest layer, reduce early pooling / striding).",
            "Try an architecture suited to the data (convolutions for images, attention or "
            "recurrence for sequences).",
            "Train longer once capacity is sufficient, and re-tune the learning rate for the "
            "larger model.",
        ),
        explains=(
            D.UNDERFITTING,
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    # --------------------------------------------------------------------- data
    Entry(
        id=D.CLASS_IMBALANCE,
        family=F.DATA,
        title="Some classes are much rarer than others",
        explanation=(
            "When a few classes dominate the data, the model can reach a good-looking loss "
            "and accuracy by mostly predicting the frequent ones, and the rare classes are "
            "learned poorly or not at all. Plain accuracy hides the problem; per-class recall "
            "or a confusion matrix shows it. It matters most when the rare classes are the "
            "ones you care about (fraud, defects, disease)."
        ),
        evidence=(
            "the class frequency distribution (ratio of the most to the least common class)",
            "per-class recall compared with overall accuracy",
            "predictions concentrated on the majority classes",
        ),
        fixes=(
            "Re-balance sampling with torch.utils.data.WeightedRandomSampler (weights "
            "inversely proportional to class frequency).",
            "Weight the loss: nn.CrossEntropyLoss(weight=class_weights) or "
            "nn.BCEWithLogitsLoss(pos_weight=...).",
            "Collect or synthesise more samples of the rare classes (augmentation).",
            "Judge the model with per-class metrics (balanced accuracy, macro F1) and tune the "
            "decision threshold.",
        ),
        explains=(
            D.WORSE_THAN_BASELINE,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.TOO_LITTLE_DATA,
        family=F.DATA,
        title="Too few samples for the model size",
        explanation=(
            "The data set is small, overall or for some classes, relative to the number of "
            "parameters: a network with millions of weights trained on a few hundred "
            "samples, or classes with only a handful of examples. The model can memorise the "
            "training set, validation scores vary a lot between splits, and a small "
            "validation set is easily overfit by tuning."
        ),
        evidence=(
            "samples per class and in total versus the number of trainable parameters",
            "how validation performance changes with the training-set size (learning curve)",
            "the size of the validation set and the spread of its score across splits",
        ),
        fixes=(
            "Collect or label more data, starting with the weakest classes.",
            "Start from a pretrained model and fine-tune it (transfer learning).",
            "Use data augmentation (torchvision.transforms.v2: random crops, flips, colour "
            "jitter) to stretch the data you have.",
            "Use a smaller model and stronger regularisation, and cross-validation instead of "
            "a single small validation split.",
        ),
        explains=(
            D.OVERFITTING,
            D.VAL_OVERFITTING,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.LABEL_NOISE,
        family=F.DATA,
        title="A notable fraction of labels look wrong",
        explanation=(
            "Some targets are simply wrong: annotator mistakes, labels inferred by weak "
            "heuristics, or near-duplicate samples carrying different labels. The model "
            "spends capacity memorising the wrong labels, which raises the error it can reach "
            "on clean data and widens the gap between training and validation. It differs "
            "from corrupted labels in degree: the pairing is mostly right, but a share of it "
            "is not."
        ),
        evidence=(
            "samples the model confidently and consistently predicts as another class",
            "samples with high loss late in training, across folds",
            "near-duplicate inputs with different labels",
        ),
        fixes=(
            "Review the highest-loss samples by hand and fix or drop the wrong labels.",
            "Use a noise-robust loss: nn.CrossEntropyLoss(label_smoothing=0.1), or drop the "
            "highest-loss samples per batch.",
            "Stop early: noisy labels are memorised late in training.",
            "Improve the labelling process (clearer guidelines, several annotators per sample).",
        ),
        explains=(
            D.UNDERFITTING,
            D.OVERFITTING,
            D.BELOW_REFERENCE,
        ),
    ),
    Entry(
        id=D.TRAIN_VAL_LEAKAGE,
        family=F.DATA,
        title="The same samples appear in training and validation/test data",
        explanation=(
            "Validation or test data overlaps with the training data: exact duplicates, "
            "augmented copies, several frames of one video or several images of one patient "
            "split across sets, or a random split of time-series data that lets the model see "
            "the future. The held-out score then measures memory rather than generalisation "
            "and looks better than it is; the true error only shows on genuinely new data."
        ),
        evidence=(
            "exact or near-duplicate samples (hash or embedding distance) across splits",
            "groups (patient, user, video, time window) present in more than one split",
            "held-out performance as good as training performance",
        ),
        fixes=(
            "Remove duplicates and near-duplicates across splits before training.",
            "Split by group (sklearn.model_selection.GroupShuffleSplit / GroupKFold), not by "
            "sample.",
            "Split time series by time: validate and test on data later than the training data.",
            "Re-evaluate on the cleaned held-out sets before trusting earlier scores.",
        ),
        explains=(D.VAL_OVERFITTING,),
    ),
    Entry(
        id=D.DISTRIBUTION_SHIFT,
        family=F.DATA,
        title="Training and validation/test data come from different distributions",
        explanation=(
            "The data the model is judged on differs from what it was trained on: photos "
            "from another camera, a different hospital or country, a later time period, or "
            "web images used to train a model for phone pictures. The model may generalise "
            "well within the training distribution and still do poorly on the target one. "
            "The gap is measured by comparing a train-validation split drawn from the "
            "training distribution with the validation set from the target one."
        ),
        evidence=(
            "error on a held-out split of the training distribution versus error on the "
            "target validation set",
            "a classifier can tell training from validation/test inputs apart",
            "input statistics (per-feature mean/std, label frequencies) that differ between sets",
        ),
        fixes=(
            "Analyse the errors on the target data to see how it differs from the training data.",
            "Collect more training data that looks like the target data.",
            "Synthesise target-like data (augmentation that mimics the target's conditions).",
            "Use domain adaptation: fine-tune on a few labelled target samples or use "
            "unlabelled target data.",
        ),
        explains=(
            D.WORSE_THAN_BASELINE,
            D.OVERFITTING,
            D.VAL_OVERFITTING,
            D.BELOW_REFERENCE,
        ),
    ),
    # --------------------------------------------------------------- evaluation
    Entry(
        id=D.UNDERFITTING,
        family=F.EVALUATION,
        title="High bias: training error far above the achievable error",
        explanation=(
            "The model does not fit even its training data: training error stays well above "
            "the irreducible (e.g. human-level) error. Once bugs are ruled out, this means "
            "the model is too small or too constrained, regularisation is too strong, or "
            "training is too short or poorly tuned. Reducing variance will not help until "
            "bias is addressed."
        ),
        evidence=(
            "training error minus the irreducible (human-level or best known) error",
            "the training loss curve flattening well above its achievable value",
        ),
        fixes=(
            "Make the model bigger (more units, then more layers).",
            "Reduce regularisation (weight_decay, dropout, label smoothing).",
            "Do error analysis: look at which training samples and classes are still wrong.",
            "Try a different architecture better suited to the data.",
            "Tune hyper-parameters (learning rate and schedule first), and add features if "
            "inputs lack information.",
        ),
        explains=(D.BELOW_REFERENCE,),
    ),
    Entry(
        id=D.OVERFITTING,
        family=F.EVALUATION,
        title="High variance: validation error far above training error",
        explanation=(
            "The model fits the training data much better than held-out data from the same "
            "distribution: it has memorised details that do not generalise. It is typical of "
            "large models on small or noisy data sets and of long training without early "
            "stopping."
        ),
        evidence=(
            "validation error minus training error",
            "validation loss rising while the training loss keeps falling",
        ),
        fixes=(
            "Get more training data.",
            "Add normalisation layers (nn.BatchNorm2d / nn.LayerNorm).",
            "Use data augmentation (torchvision.transforms.v2: random crops, flips, colour jitter).",
            "Regularise more: nn.Dropout, weight_decay in torch.optim.AdamW.",
            "Then: error analysis, a different architecture, hyper-parameter tuning, early "
            "stopping on the validation loss, fewer input features, a smaller model.",
        ),
        explains=(D.WORSE_THAN_BASELINE, D.BELOW_REFERENCE),
    ),
    Entry(
        id=D.VAL_OVERFITTING,
        family=F.EVALUATION,
        title="The validation set was overfit: test error far above validation error",
        explanation=(
            "Choices made by looking at the validation score (hyper-parameter search, "
            "early-stopping epoch, architecture changes, many repeated runs) have fitted the "
            "validation set itself, so its score is optimistic and the test error is "
            "clearly higher. It is most common with a small validation set and a long "
            "tuning process."
        ),
        evidence=(
            "test error minus validation error, with both sets from the same distribution",
            "the size of the validation set and the number of configurations compared on it",
        ),
        fixes=(
            "Use a larger validation set, or k-fold cross-validation for model selection.",
            "Tune fewer things on it, and use coarse-to-fine random search with fewer trials.",
            "Keep the test set untouched until the final evaluation, and refresh the "
            "validation set if it has been used for many decisions.",
        ),
    ),
    Entry(
        id=D.WORSE_THAN_BASELINE,
        family=F.EVALUATION,
        title="The model does not beat a simple baseline",
        explanation=(
            "The model does no better than an input-independent or trivial predictor: the "
            "majority class, the mean of the targets, or a linear/logistic regression on the "
            "same inputs. A network that cannot beat these almost always has a bug (wrong "
            "loss input, misaligned labels, no gradient flow, a broken pipeline) rather than "
            "a tuning problem, so the wiring checks come first."
        ),
        evidence=(
            "the model's validation metric versus the majority-class / mean predictor",
            "the model's validation metric versus a linear or logistic regression on the "
            "same inputs",
        ),
        fixes=(
            "Overfit a single batch first; if that fails, the problem is a bug, not the data.",
            "Check the wiring: loss input (logits vs probabilities), label alignment, "
            "train/eval mode, gradient flow.",
            "Look at a few inputs exactly as the model receives them (after transforms) with "
            "their targets.",
            "Start simpler: the smallest model and a subset of the data, then scale up.",
        ),
    ),
    Entry(
        id=D.BELOW_REFERENCE,
        family=F.EVALUATION,
        title="The model underperforms a known reference result",
        explanation=(
            "The model's result is clearly below one the user supplied: an official "
            "implementation, a paper, or a similar model on similar data. Differences in "
            "pre-processing, hyper-parameters, training length, evaluation protocol or a "
            "subtle bug usually explain the gap. The more trustworthy the reference (official "
            "code on similar data beats a number from a paper), the more the gap points to a "
            "problem on our side."
        ),
        evidence=(
            "the model's metric versus the reference metric, on the same data and protocol",
            "the kind of reference (official code, paper, similar model) and how comparable it is",
        ),
        fixes=(
            "Reproduce the reference setting exactly first (same data split, pre-processing, "
            "hyper-parameters and schedule), then change one thing at a time.",
            "Compare the evaluation protocol and metric definition with the reference's.",
            "Step through your model and the reference implementation side by side on the "
            "same batch and compare intermediate outputs.",
            "Check that training ran as long as the reference's (epochs, steps, batch size).",
        ),
    ),
    # ---------------------------------------------------------------- resources
    Entry(
        id=D.MEMORY_LEAK,
        family=F.RESOURCES,
        title="Memory grows step after step",
        explanation=(
            "Memory use climbs steadily during training until it runs out. The classic "
            "PyTorch cause is keeping tensors that still hold their computation graph: "
            "losses.append(loss) or total_loss += loss instead of loss.item(), so every "
            "step's graph stays alive. Other causes: storing outputs for metrics without "
            ".detach(), evaluation run without torch.no_grad(), caches or lists that only "
            "grow, and creating new modules or optimisers inside the loop."
        ),
        evidence=(
            "allocated memory (GPU and host) rising roughly linearly with the step count",
            "the number of live tensors and autograd graphs growing across steps",
        ),
        fixes=(
            "Log scalars with loss.item() (or loss.detach()) instead of keeping the loss "
            "tensor: losses.append(loss.item()).",
            "Detach and move to the CPU anything kept for metrics (out.detach().cpu()).",
            "Wrap evaluation in torch.no_grad() or torch.inference_mode().",
            "Create models, optimisers and other objects once, outside the training loop, and "
            "bound any cache.",
        ),
        explains=(D.OUT_OF_MEMORY,),
    ),
    Entry(
        id=D.INPUT_PIPELINE_BOTTLENECK,
        family=F.RESOURCES,
        title="The training step waits on data loading most of the time",
        explanation=(
            "The accelerator sits idle while the next batch is prepared. Common causes: a "
            "DataLoader with num_workers=0 doing image decoding and augmentation in the main "
            "process, reading many small files from slow storage, heavy Python per-sample "
            "work in __getitem__, or host-to-device copies that are not overlapped with "
            "compute. Training is then far slower than the hardware allows, which limits "
            "how many experiments can be run."
        ),
        evidence=(
            "time per step spent waiting for the next batch versus time in forward/backward",
            "step time that stays the same when the model is made smaller",
        ),
        fixes=(
            "Raise DataLoader(num_workers=...) (e.g. the number of CPU cores) and set "
            "persistent_workers=True.",
            "Set pin_memory=True and copy batches with x.to(device, non_blocking=True).",
            "Move expensive pre-processing out of __getitem__: decode and resize once and "
            "cache the result, or use batched/GPU transforms.",
            "Store data in fewer, larger files (or in memory) on fast local storage.",
        ),
    ),
    # ------------------------------------------------------------------ coverage
    Entry(
        id=D.CHECK_INCOMPLETE,
        family=F.COVERAGE,
        title="A check could not finish, so part of the diagnosis is missing",
        explanation=(
            "A check errored, waited on data that never came, or ran into its safety limit, "
            "so dldoctor cannot say whether the problems it looks for are present. The run is "
            "reported as incomplete, never as healthy: silence from a check that did not run "
            "is not evidence of health. When the user's code caused it (a Dataset whose "
            "__getitem__ blocks, a validation loader whose batches the model cannot take), the "
            "finding names the line; otherwise it names the check and its reason."
        ),
        evidence=(
            "the check, what it was doing, and the exception or the limit it hit",
            "for a hang: the split, the sample index and the user's line the reader waited at",
        ),
        fixes=(
            "Fix the user's line the finding names (a __getitem__ that blocks or raises, a "
            "loader whose batches differ from training), then run dldoctor again.",
            "If a safety limit stopped it on a slow model, raise run.check_timeout_s (or "
            "training.max_seconds) in --config, or use --profile quick for fewer steps.",
            "If dldoctor itself raised, run with -v and report the check's reason as a bug.",
            "To let CI pass on a partial diagnosis on purpose, use --allow-incomplete.",
        ),
    ),
    # ------------------------------------------------------- distributed training
    Entry(
        id=D.DDP_DUPLICATE_DATA,
        family=F.DISTRIBUTED,
        title="Every rank trains on the same samples",
        explanation=(
            "Each process of the job reads the whole data set in the same order, so the "
            "ranks compute the same gradients and N processes do the work of one. The usual "
            "cause is a DataLoader without a DistributedSampler, or one sampler per rank built "
            "with the same seed and no rank split. Training looks healthy but is N times "
            "slower per sample than it should be, and an epoch is N times the data set."
        ),
        evidence=(
            "fingerprints of the batches each rank drew, compared across ranks",
            "the sampler class of the training loader on each rank",
        ),
        fixes=(
            "Give the training DataLoader sampler=DistributedSampler(dataset) (and shuffle="
            "False on the loader: the sampler shuffles).",
            "For an IterableDataset, split the stream by rank (torch.utils.data.get_worker_info "
            "and the rank) so that no two ranks read the same items.",
            "If each rank builds its own sampler, pass num_replicas=world_size and rank=rank so "
            "that the ranks take disjoint shards.",
        ),
    ),
    Entry(
        id=D.DDP_SAME_ORDER,
        family=F.DISTRIBUTED,
        title="Every epoch repeats the same sample order",
        explanation=(
            "A DistributedSampler shuffles with a seed derived from its epoch counter, which "
            "only moves when sampler.set_epoch(epoch) is called. Without it every epoch sees "
            "the batches in the same order, which weakens the regularising effect of shuffling "
            "and can leave a visible periodic pattern in the loss."
        ),
        evidence=(
            "fingerprints of the first batches of successive epochs on the same rank",
            "whether the training sampler's epoch counter moved between epochs",
        ),
        fixes=(
            "Call train_sampler.set_epoch(epoch) at the start of every epoch, before iterating "
            "the loader.",
            "With several loaders (a sampler per task or data set), call set_epoch on each.",
            "With a custom sampler, derive its shuffle seed from the epoch number.",
        ),
    ),
    Entry(
        id=D.DDP_REPLICAS_DIVERGED,
        family=F.DISTRIBUTED,
        title="The model replicas differ across ranks after training steps",
        explanation=(
            "Data-parallel training assumes every rank holds the same weights. They drift "
            "apart when the model is not wrapped in DistributedDataParallel, when ranks seed "
            "their initialisation differently and nothing broadcasts rank 0's weights, or "
            "when a buffer (batch-norm running statistics, a custom buffer) is updated per rank "
            "and never synchronised. Each rank then evaluates and saves a different model."
        ),
        evidence=(
            "checksums of every parameter and buffer compared across ranks after steps",
            "the first parameter or buffer that differs, and whether it differed before the first step",
        ),
        fixes=(
            "Wrap the model: model = DistributedDataParallel(model, device_ids=[local_rank]) "
            "(it broadcasts rank 0's weights at construction and averages gradients).",
            "Seed every rank's initialisation identically, or broadcast the weights from rank 0.",
            "Keep broadcast_buffers=True (the default) or synchronise custom buffers yourself.",
        ),
    ),
    Entry(
        id=D.DDP_GRADIENTS_NOT_AVERAGED,
        family=F.DISTRIBUTED,
        title="Gradients are summed, or not reduced at all, across ranks",
        explanation=(
            "DistributedDataParallel averages gradients across ranks during backward. A manual "
            "all_reduce without dividing by the world size sums them instead, multiplying the "
            "effective learning rate by the number of ranks; no reduction at all lets each "
            "rank follow its own gradient."
        ),
        evidence=(
            "each rank's local gradients (from its backward passes) against the gradient its "
            "optimizer steps with, both projected on the same random directions",
            "whether the model is wrapped in DistributedDataParallel",
        ),
        fixes=(
            "Use DistributedDataParallel instead of a manual all_reduce.",
            "If you reduce by hand, divide by dist.get_world_size() after the all_reduce (or use "
            "ReduceOp.AVG where the backend supports it).",
            "If summed gradients are intended, divide the learning rate by the world size.",
        ),
        explains=(D.DDP_REPLICAS_DIVERGED,),
    ),
    Entry(
        id=D.DDP_UNSYNCED_BATCHNORM,
        family=F.DISTRIBUTED,
        title="Batch norm statistics come from small per-rank batches",
        explanation=(
            "Under data parallelism each rank's BatchNorm normalises with the statistics of its "
            "own slice of the batch. With a few samples per rank these estimates are noisy, and "
            "training and evaluation behave like small-batch training whatever the global "
            "batch size is. SyncBatchNorm computes the statistics over all ranks."
        ),
        evidence=(
            "the per-rank batch size at each batch-norm layer",
            "the spread of the batch statistics across ranks at the same step",
        ),
        fixes=(
            "Convert the model before wrapping it: model = nn.SyncBatchNorm.convert_sync_batchnorm(model).",
            "Or raise the per-rank batch size (gradient accumulation does not help batch norm).",
            "Or use a normalisation that does not depend on the batch (GroupNorm, LayerNorm).",
        ),
    ),
    Entry(
        id=D.DDP_HANG,
        family=F.DISTRIBUTED,
        title="Ranks wait at different collectives",
        explanation=(
            "A collective operation (all_reduce, broadcast, barrier, DDP's gradient "
            "synchronisation) completes only when every rank calls it. When one rank takes "
            "another code path (a condition on the rank, an uneven number of batches, an "
            "exception on one rank) the others wait until the process group's timeout, 30 "
            "minutes by default, with no message."
        ),
        evidence=(
            "each rank's Python stack after the watchdog's timeout",
            "the collective and the user's line each rank waits at",
        ),
        fixes=(
            "Make every rank reach the same collectives in the same order: move rank-specific "
            "work (logging, saving) outside collective calls, and guard only side effects by rank.",
            "Give every rank the same number of batches (DistributedSampler(drop_last=True)) "
            "or use DDP's join() context manager for uneven inputs.",
            "Set TORCH_DISTRIBUTED_DEBUG=DETAIL to have torch check that collectives match.",
        ),
    ),
    Entry(
        id=D.DDP_STRAGGLER,
        family=F.DISTRIBUTED,
        title="One rank is much slower than the others and holds every step",
        explanation=(
            "Every synchronised step waits for the slowest rank, so one slow rank (an uneven "
            "data shard, a slower data pipeline, a busy device, rank-0-only work such as "
            "logging and checkpointing inside the loop) sets the pace of the whole job."
        ),
        evidence=(
            "step time and data-wait time per rank over the watched steps",
            "how much longer the slowest rank takes than the median rank",
        ),
        fixes=(
            "Move rank-0-only work (logging, evaluation, checkpoints) out of the step, or do it "
            "less often.",
            "Balance the data pipeline: the same num_workers and the same shard sizes on every rank.",
            "Check the slow rank's device and host for other load (another job, thermal limits).",
        ),
    ),
    Entry(
        id=D.DDP_SCALING_MISMATCH,
        family=F.DISTRIBUTED,
        title="The global batch grew with the world size, the learning rate did not",
        explanation=(
            "The global batch is the per-rank batch times the number of ranks. Moving a recipe "
            "from one process to N multiplies it by N; keeping the learning rate then takes "
            "N times fewer, equally long steps per epoch, which usually trains worse. The "
            "linear scaling rule (Goyal et al., 2017) raises the learning rate with the batch, "
            "with a warm-up; the alternative is to divide the per-rank batch by N."
        ),
        evidence=(
            "the per-rank batch size and the world size (the global batch)",
            "the optimizer's learning rate, compared with the single-process setting",
        ),
        fixes=(
            "Scale the learning rate with the global batch size (lr x world_size) and add a "
            "short warm-up.",
            "Or keep the global batch constant: divide the per-rank batch size by the world size.",
            "For Adam-type optimizers, scale by the square root of the batch growth instead.",
        ),
    ),
)
