"""The fixtures themselves load back through the public loaders."""


def test_tiny_encoder_loads_and_encodes(tiny_st_encoder_dir):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tiny_st_encoder_dir), device="cpu")
    emb = st.encode(["where is the river", "the river runs"], prompt_name="query")
    assert emb.shape == (2, 32)
    assert abs(float((emb[0] ** 2).sum()) - 1.0) < 1e-5


def test_tiny_causal_lm_generates(tiny_causal_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    lm = AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir)
    ids = tok(["the river runs"], return_tensors="pt")
    out = lm.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3
