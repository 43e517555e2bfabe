"""一時的なハイパーパラメータの探索（GPU で精度だけを見る）。"""
import json, os, sys, time
from dataclasses import replace, asdict
import torch
from easy_transformer.experiments import *

DEV = os.environ.get("DEV", "cuda")
OUT = os.environ.get("OUT", "/tmp/sweep")
os.makedirs(OUT, exist_ok=True)

def S(task, **kw):
    return ("s2s", task, kw)

JOBS = [
 [S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=64, lr=1e-3, max_steps=1500),
  S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=64, lr=2e-3, max_steps=1000),
  S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=64, lr=1e-3, max_steps=800),
  S("copy", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=800),
  S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=128, lr=2e-3, max_steps=1500),
  ],
 [S("rpn", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=2000),
  S("rpn", d_model=64, n_layers=3, d_ff=256, batch_size=64, lr=2e-3, max_steps=2000),
  S("reverse", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=800),
  S("rpn", d_model=64, n_layers=2, d_ff=256, batch_size=128, lr=3e-3, max_steps=1500),
  ],
 [S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=64, lr=1e-3, max_steps=1500, dropout=0.0),
  S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=64, lr=1e-3, max_steps=1500, label_smoothing=0.1),
  S("sort", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=800),
  S("rpn", d_model=128, n_layers=3, d_ff=512, batch_size=64, lr=1e-3, max_steps=1500),
  ],
 [S("rpn", d_model=128, n_layers=1, d_ff=512, batch_size=64, lr=2e-3, max_steps=1500),
  S("copy", d_model=32, n_layers=2, d_ff=128, batch_size=64, lr=3e-3, max_steps=800),
  S("reverse", d_model=32, n_layers=2, d_ff=128, batch_size=64, lr=3e-3, max_steps=800),
  S("sort", d_model=32, n_layers=2, d_ff=128, batch_size=64, lr=3e-3, max_steps=800),
  S("reverse", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=500),
  S("copy", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=500),
  S("sort", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=500),
  ],
 [("lm", "minilang", dict(block_size=128, n_layers=2, n_heads=4, d_model=64, batch_size=32, max_steps=1500, lr=2e-3, min_lr=2e-4)),
  ("lm", "minilang", dict(block_size=128, n_layers=2, n_heads=4, d_model=64, batch_size=32, max_steps=800, lr=2e-3, min_lr=2e-4)),
  ("lm", "minilang", dict(block_size=128, n_layers=4, n_heads=4, d_model=128, batch_size=32, max_steps=1000, lr=1e-3, min_lr=1e-4)),
  S("eval", d_model=128, n_layers=2, d_ff=512, batch_size=64, lr=1e-3, max_steps=2000),
  S("eval", d_model=128, n_layers=3, d_ff=512, batch_size=128, lr=1e-3, max_steps=2000, max_level=2),
  ],
 [S("rpn", d_model=96, n_layers=2, d_ff=384, batch_size=64, lr=2e-3, max_steps=1500, n_heads=4),
  S("rpn", d_model=128, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=1200),
  S("rpn", d_model=128, n_layers=2, d_ff=512, batch_size=32, lr=1e-3, max_steps=2500),
  S("rpn", d_model=64, n_layers=2, d_ff=256, batch_size=64, lr=2e-3, max_steps=3000, dropout=0.0),
  ],
]

def run(i):
    out = open(f"{OUT}/job{i}.jsonl", "a")
    for kind, task, kw in JOBS[i]:
        t0 = time.time()
        if kind == "s2s":
            cfg = replace(TASK_CONFIGS[task], **{"eval_interval": 250, **kw})
            r = train_seq2seq(task, config=cfg, device=DEV, progress=False)
            rec = dict(kind=kind, task=task, kw=kw, test=r.test_exact_match, general=r.general_exact_match,
                       val_loss=r.val_loss, n_params=r.n_params,
                       curve=[(h["step"], h.get("val_exact_match")) for h in r.history if "val_exact_match" in h],
                       examples=[e for e in r.examples if e["target"] != e["prediction"]][:4])
        else:
            cfg = replace(MINILANG_LM_CONFIG, **{"eval_interval": 250, **kw})
            accs = {}
            r = train_minilang_lm(config=cfg, device=DEV, progress=False)
            accs["t1.0"] = r.acceptance_rate
            for t in (0.8,):
                from easy_transformer.experiments import generate_text
            rec = dict(kind=kind, task=task, kw=kw, acc=accs, novel=r.novel_rate, n=r.n_generated_programs,
                       val_loss=r.val_loss, samples=r.samples[:8], n_params=r.n_params)
        rec["sec"] = time.time() - t0
        out.write(json.dumps(rec, ensure_ascii=False) + "\n"); out.flush()
        print(i, rec["task"], rec.get("test"), rec.get("acc"), f"{rec['sec']:.0f}s", flush=True)

if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(int(sys.argv[1]))
    else:
        import subprocess
        ps = [subprocess.Popen([sys.executable, __file__, str(i)]) for i in range(len(JOBS))]
        for p in ps: p.wait()
