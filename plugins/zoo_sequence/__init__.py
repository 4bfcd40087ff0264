"""zoo plugin: synthetic sequence data, recurrent and 1-D convolutional models, their recipes.

This module is what the ``sequence`` entry point names. It only declares; the
implementations in ``zoo_sequence.datasets`` and ``zoo_sequence.models`` are imported
when a component is used. Sequence samples are ``(T, F)``: T time steps of F features,
and models receive batches ``(N, T, F)``.
"""

from zoo import DatasetSpec, ModelSpec, Param, RecipeSpec, hookimpl

ZOO_CONTRACT = "1"

_SPLIT = {
    "val_size": Param("float", 0.2, "share of samples for validation (val_size + test_size < 1)", min=0.01, max=0.9),
    "test_size": Param("float", 0.2, "share of samples for testing (val_size + test_size < 1)", min=0.01, max=0.9),
    "standardize": Param("bool", True, "standardise with one mean/std over all training values (global)"),
}

_TASKS = ("binary", "multiclass", "regression")

_RECURRENT = {
    "hidden": Param("int", 64, "hidden units per layer and direction", min=1),
    "layers": Param("int", 1, "stacked recurrent layers", min=1),
    "bidirectional": Param("bool", False, "also read the sequence backwards (the head sees both final states)"),
    "dropout": Param("float", 0.0, "dropout between stacked layers and before the head", min=0.0, max=0.99),
}


@hookimpl
def zoo_datasets():
    return [
        DatasetSpec(
            name="waveforms",
            summary="Noisy sine, square, sawtooth and triangle waves (random frequency, phase, amplitude): 4 classes.",
            tasks=("multiclass",),
            input="sequence",
            impl="zoo_sequence.datasets:waveforms",
            params={
                "n_samples": Param("int", 3000, "sequences in total (balanced over the 4 shapes)", min=40),
                "length": Param("int", 64, "time steps T per sequence", min=2),
                "channels": Param("int", 1, "features F per step: each channel is the same shape and frequency "
                                  "with its own phase, amplitude and noise", min=1),
                "noise": Param("float", 0.1, "standard deviation of the Gaussian noise", min=0.0),
                "min_cycles": Param("float", 2.0, "fewest periods in a sequence", min=0.0),
                "max_cycles": Param("float", 6.0, "most periods in a sequence", min=0.0),
                "min_amplitude": Param("float", 0.5, "smallest amplitude", min=0.0),
                "max_amplitude": Param("float", 1.5, "largest amplitude", min=0.0),
                "data_seed": Param("int", 0, "seed of the generator (the run's --seed picks the split)"),
                **_SPLIT,
            },
        ),
        DatasetSpec(
            name="waveform-forecast",
            summary="Forecast the next value(s) of a noisy sum of sines from the previous T steps (regression).",
            tasks=("regression",),
            input="sequence",
            impl="zoo_sequence.datasets:waveform_forecast",
            params={
                "n_samples": Param("int", 3000, "sequences in total", min=10),
                "length": Param("int", 64, "time steps T the model sees", min=2),
                "horizon": Param("int", 1, "values to predict after the last seen step (the targets)", min=1),
                "components": Param("int", 2, "sines summed per sequence", min=1),
                "noise": Param("float", 0.1, "standard deviation of the Gaussian noise on every value (targets "
                               "too, so the best test MSE is noise^2)", min=0.0),
                "min_cycles": Param("float", 1.0, "fewest periods of a component within T steps", min=0.0),
                "max_cycles": Param("float", 4.0, "most periods of a component within T steps", min=0.0),
                "data_seed": Param("int", 0, "seed of the generator (the run's --seed picks the split)"),
                **_SPLIT,
            },
        ),
    ]


@hookimpl
def zoo_models():
    return [
        ModelSpec(
            name="rnn",
            summary="Elman RNN (tanh) over the time steps; a linear head on the final hidden state(s).",
            tasks=_TASKS,
            inputs=("sequence",),
            impl="zoo_sequence.models:rnn",
            params=dict(_RECURRENT),
        ),
        ModelSpec(
            name="lstm",
            summary="LSTM over the time steps; a linear head on the final hidden state(s).",
            tasks=_TASKS,
            inputs=("sequence",),
            impl="zoo_sequence.models:lstm",
            params=dict(_RECURRENT),
        ),
        ModelSpec(
            name="gru",
            summary="GRU over the time steps; a linear head on the final hidden state(s).",
            tasks=_TASKS,
            inputs=("sequence",),
            impl="zoo_sequence.models:gru",
            params=dict(_RECURRENT),
        ),
        ModelSpec(
            name="cnn1d",
            summary="1-D convolutions over time (conv-ReLU-maxpool blocks), global average pooling, linear head.",
            tasks=_TASKS,
            inputs=("sequence",),
            impl="zoo_sequence.models:cnn1d",
            params={
                "channels": Param("int-list", (32, 64), "output channels of the conv blocks, e.g. 32,64", min=1),
                "kernel_size": Param("int", 5, "convolution kernel size over time ('same' padding)", min=1),
                "dropout": Param("float", 0.1, "dropout before the linear head", min=0.0, max=0.99),
            },
        ),
    ]


_TRAIN = {"optimizer": "adam", "schedule": "cosine", "clip_grad": 1.0}


@hookimpl
def zoo_recipes():
    return [
        RecipeSpec(
            name="waveforms-lstm",
            summary="Classify the four noisy waveform shapes with a 1x64 LSTM and cross-entropy.",
            dataset="waveforms",
            model="lstm",
            loss="cross-entropy",
            model_params={"hidden": 64},
            train={"epochs": 30, "batch_size": 32, "lr": 0.005, **_TRAIN},
        ),
        RecipeSpec(
            name="waveforms-gru",
            summary="Classify the four noisy waveform shapes with a 1x64 GRU and cross-entropy.",
            dataset="waveforms",
            model="gru",
            loss="cross-entropy",
            model_params={"hidden": 64},
            train={"epochs": 15, "batch_size": 32, "lr": 0.005, **_TRAIN},
        ),
        RecipeSpec(
            name="waveforms-rnn",
            summary="The four waveform shapes with a 1x64 Elman RNN: the baseline gated cells beat.",
            dataset="waveforms",
            model="rnn",
            loss="cross-entropy",
            # hidden 64 and lr 0.002 chosen on validation accuracy over seeds 0-9 (python -m bench tune): 1x128 at
            # lr 0.001 did not learn on 2 of 10 seeds (min 0.33); 1x64 at lr 0.002 never fell below 0.82
            model_params={"hidden": 64},
            train={"epochs": 30, "batch_size": 32, "lr": 0.002, **_TRAIN},
        ),
        RecipeSpec(
            name="waveforms-cnn1d",
            summary="Classify the four noisy waveform shapes with a three-block 1-D CNN and cross-entropy.",
            dataset="waveforms",
            model="cnn1d",
            loss="cross-entropy",
            model_params={"channels": (32, 64, 64)},
            # one thread: with two, the threads spin whenever the other core is busy (measured on a
            # shared 2-core machine: 5-6 s of CPU with one thread, 32-40 s with two, same accuracy)
            train={"epochs": 20, "batch_size": 64, "lr": 0.005, "threads": 1, **_TRAIN},
        ),
        RecipeSpec(
            name="waveform-forecast-gru",
            summary="Forecast the next value of a noisy sum of two sines with a 1x64 GRU and MSE.",
            dataset="waveform-forecast",
            model="gru",
            loss="mse",
            model_params={"hidden": 64},
            # lr and epochs chosen on mean validation R² over seeds 0-4 (python -m bench tune; was
            # lr 0.005 for 15 epochs, still improving at the last epoch)
            train={"epochs": 25, "batch_size": 64, "lr": 0.01, **_TRAIN},
        ),
    ]
