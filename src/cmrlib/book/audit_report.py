"""The audit's rendered report: the notebook ``resources/audit_report.ipynb`` executed with papermill on an audit's
folder (:func:`cmrlib.evaluation.audit.run_audit`) and exported to HTML with nbconvert, code hidden, so it reads
like a chapter of the book."""
from __future__ import annotations

from pathlib import Path

TEMPLATE = Path(__file__).parents[1] / "resources" / "audit_report.ipynb"


def render_report(audit_dir: str | Path, kernel: str = "python3") -> Path:
    """Execute the report on ``audit_dir`` into ``report.ipynb`` and ``report.html`` beside its tables; returns
    the HTML's path."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    audit_dir = Path(audit_dir).resolve()
    executed = audit_dir / "report.ipynb"
    pm.execute_notebook(str(TEMPLATE), str(executed), parameters={"AUDIT": str(audit_dir)}, kernel_name=kernel,
                        progress_bar=False, cwd=str(audit_dir))
    exporter = HTMLExporter(exclude_input=True)
    html, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    out = audit_dir / "report.html"
    out.write_text(html, encoding="utf-8")
    return out
