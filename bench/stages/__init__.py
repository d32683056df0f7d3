"""One module per stage; each exposes ``run(ctx: BenchContext) -> list[Result]``."""
