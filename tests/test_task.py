"""Task.subset / Task.sample / Task.pools on a hand-made task: exact expected contents."""

from xlir.data.task import Task


def _task(pooled: bool = False) -> Task:
    corpus = {f"d{i}": {"title": "", "text": f"doc {i}"} for i in range(10)}
    queries = {f"q{i}": f"query {i}" for i in range(6)}
    # hau queries judge d0-d2 (hau pool), yor queries judge d6-d8 (yor pool).
    qrels = {f"q{i}": {f"d{i if i < 3 else i + 3}": 1} for i in range(6)}
    qlang = {"q0": "hau_Latn", "q1": "hau_Latn", "q2": "hau_Latn",
             "q3": "yor_Latn", "q4": "yor_Latn", "q5": "yor_Latn"}
    dlang = {d: "eng_Latn" for d in corpus}
    qpool = dpool = None
    if pooled:
        qpool = dict(qlang)
        dpool = {d: ("hau_Latn" if i < 5 else "yor_Latn") for i, d in enumerate(corpus)}
    return Task("t", "test", corpus, queries, qrels, qlang, dlang, qpool, dpool)


def test_pools_default_is_one_shared_pool():
    pools = _task().pools()
    assert list(pools) == ["all"]
    assert len(pools["all"][0]) == 6 and len(pools["all"][1]) == 10


def test_pools_split_queries_and_docs_by_key():
    pools = _task(pooled=True).pools()
    assert pools["hau_Latn"] == (["q0", "q1", "q2"], ["d0", "d1", "d2", "d3", "d4"])
    assert pools["yor_Latn"] == (["q3", "q4", "q5"], ["d5", "d6", "d7", "d8", "d9"])


def test_subset_keeps_only_requested_languages_and_leaves_input_alone():
    task = _task()
    sub = task.subset(["yor_Latn"])
    assert sorted(sub.queries) == ["q3", "q4", "q5"]
    assert sorted(sub.qrels) == ["q3", "q4", "q5"]
    assert len(task.queries) == 6


def test_sample_is_deterministic_and_keeps_judged_docs():
    task = _task()
    a = task.sample(max_queries_per_language=2, distractors=1, seed=3)
    b = task.sample(max_queries_per_language=2, distractors=1, seed=3)
    assert a.queries == b.queries and a.corpus == b.corpus
    assert len(a.queries) == 4
    assert {"hau_Latn", "yor_Latn"} == set(a.query_lang.values())
    judged = {d for r in a.qrels.values() for d in r}
    assert judged <= set(a.corpus)
    assert len(a.corpus) == len(judged) + 1
    assert a.meta["sampled"]["documents"] == len(a.corpus)


def test_sample_draws_distractors_per_pool():
    small = _task(pooled=True).sample(max_queries_per_language=1, distractors=2, seed=0)
    for key, (qids, dids) in small.pools().items():
        assert len(qids) == 1 and len(dids) == 3


def test_without_titles_empties_titles_only_and_leaves_input_alone():
    from xlir.encoder import passage_text

    task = Task("t", "test", {"d1": {"title": "Kano", "text": "birni ne"}}, {"q1": "ina?"},
                {"q1": {"d1": 1}}, {"q1": "hau_Latn"}, {"d1": "hau_Latn"})
    plain = task.without_titles()
    assert plain.corpus == {"d1": {"title": "", "text": "birni ne"}}
    assert passage_text(plain.corpus["d1"]) == "birni ne" and plain.meta["titles"] == "dropped"
    assert task.corpus["d1"]["title"] == "Kano" and plain.qrels == task.qrels
