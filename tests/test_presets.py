"""The shipped presets parse, expand into their grid, and every stage's config validates
(so a typo in a preset fails here, not an hour into a study)."""

from pathlib import Path

import pytest

from xlir.config import from_dict, merge
from xlir.study import Study, load_study_config, train_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["quick", "full"])
def test_preset_expands_and_every_stage_config_validates(name):
    from xlir.qgen import config_from
    from xlir.qgen_train import QGenTrainConfig
    from xlir.train import TrainConfig

    path = CONFIGS / f"{name}.yaml"
    assert path.read_text().startswith(f"# xlir study configs/{name}.yaml")
    config = load_study_config(path)
    study = Study(config, out="/nonexistent/not-written")
    grids = sum(len(m.lr_grid or []) for m in config.methods)  # one variant per rate
    assert len(study.systems()) == len(config.methods) * len(config.seeds) + grids
    for system in study.systems():
        method, seed = study.system_specs[system]
        if method.lr_grid:  # its rate comes from its variants' runs: each candidate builds
            assert all(isinstance(train_config(config, method, seed, lr=lr), TrainConfig)
                       for lr in method.lr_grid)
        else:
            assert isinstance(study.train_config(system), TrainConfig)
    from_dict(QGenTrainConfig, config.xqg.train)
    config_from(merge(config.xqg.generate, {"languages": list(config.xqg.languages)}))
    kinds = {stage for stage, _ in study.plan()}
    assert {"train", "retrieve", "fuse", "qgen-train", "qgen-generate", "augment"} <= kinds


def test_answer_preset_expands_and_chooses_nothing_on_any_split():
    from xlir.train import TrainConfig

    path = CONFIGS / "answer.yaml"
    assert path.read_text().startswith("# xlir study configs/answer.yaml")
    config = load_study_config(path)
    core = [m for m in config.methods if m.family == "core"]
    assert [m.name for m in core] == ["frozen", "full", "lora", "bottleneck"]
    assert len(config.seeds) >= 3 and all(m.seeds is None for m in core)
    # learning-rate variants: first seed only, their own family, compared on held-out dev
    variants = [m for m in config.methods if m.family == "lr"]
    assert {m.name for m in variants} == {"full", "lora", "bottleneck"} and len(variants) == 6
    assert all(m.seeds == config.seeds[:1] for m in variants)
    # the other ways of tuning, once each at the first seed, in a family of their own
    extras = [m for m in config.methods if m.family == "extra"]
    assert {m.name for m in extras} == {"bitfit", "ia3", "dora", "prompt", "madx"}
    assert all(m.seeds == config.seeds[:1] for m in extras)
    assert {m.family for m in config.methods} == {"core", "lr", "extra"}
    assert config.select_on == "tydi-en-dev" and config.select_on in [t.label for t in config.tasks]
    study = Study(config, out="/nonexistent/not-written")
    for system in study.systems():
        train = study.train_config(system)
        assert isinstance(train, TrainConfig)
        # no selection; a seeded sample of 1,024 pairs per seed (the budget: the header)
        assert train.dev is None and train.max_pairs == 1024 and train.epochs == 1
    flores = next(t for t in config.tasks if t.name == "flores-x2en")
    assert len(set(flores.languages)) >= 100
    # xQG on the full AfriQA pool in one seen and two unseen languages; base system and alpha
    # chosen on AfriQA dev (held out: role select), never on the test task.
    from xlir.data.languages import group_of
    from xlir.qgen import config_from
    from xlir.qgen_train import QGenTrainConfig

    x = config.xqg
    test = next(t for t in config.tasks if t.label == x.task)
    assert x.enabled and test.split == "test" and test.distractors is None
    assert test.max_queries_per_language is None and test.languages is None
    assert sorted(group_of(lang) for lang in x.languages) == ["seen", "unseen", "unseen"]
    dev = next(t for t in config.tasks if t.label == x.select_on)
    assert dev.role == "select" and dev.split == "dev" and set(dev.languages) <= set(x.languages)
    assert [t.label for t in config.tasks if t.role == "select"] == [dev.label]
    assert from_dict(QGenTrainConfig, x.train).split == "train"
    config_from(merge(x.generate, {"languages": list(x.languages)}))


def test_quick_preset_covers_what_the_readme_promises():
    config = load_study_config(CONFIGS / "quick.yaml")
    assert {m.name for m in config.methods} >= {"frozen", "full", "lora", "bottleneck", "bitfit"}
    tasks = {t.name: t for t in config.tasks}
    assert {"afriqa", "tydi-mono", "amqa", "flores-x2en"} <= set(tasks)
    from xlir.data.languages import seen_in_pretraining

    flores = tasks["flores-x2en"].languages
    seen = [lang for lang in flores if seen_in_pretraining(lang)]
    assert len(flores) >= 30 and len(seen) >= 10 and len(flores) - len(seen) >= 10
    assert config.xqg.enabled and set(config.baselines) == {"bm25", "hybrid"}
    # TyDi-mono searches each language's whole dev pool (reduced pools sit at 0.99 nDCG@10
    # and cannot separate systems), in both presets
    answer = load_study_config(CONFIGS / "answer.yaml")
    for preset in (config, answer):
        mono = [t for t in preset.tasks if t.name == "tydi-mono"]
        assert mono and all(t.distractors is None for t in mono)
    # the quick preset's held-out xQG task is evaluated only for the systems that choose
    dev = next(t for t in config.tasks if t.label == config.xqg.select_on)
    assert dev.role == "select" and dev.split == "dev"


def test_full_preset_chooses_its_learning_rates_and_xqg_settings_on_dev_data():
    config = load_study_config(CONFIGS / "full.yaml")
    splits = {t.label: t.split for t in config.tasks}
    assert splits[config.select_on] == "dev" and splits[config.xqg.select_on] == "dev"
    gridded = {m.name for m in config.methods if m.lr_grid}
    assert gridded == {"full", "lora", "bottleneck"}
    study = Study(config, out="/nonexistent/not-written")
    assert all(t.label == config.select_on for v in study.grids["full"].values()
               for t in study.tasks_of(v))
