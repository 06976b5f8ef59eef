"""Pure per-provider wire formats: parse HTTP request facts into a GenerationRequest, render a
ResponsePlan (or an error, or a fault) into bytes and stream frames. No I/O here."""
