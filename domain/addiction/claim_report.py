"""Subsidy claimed, approved and returned against budget, per scheme and ROC year (A11,
issue 19 part 5): for the Ministry nationally (central schemes' claims, every county), for a
bureau its county's claims. Read from the claims only (what was submitted and decided), in the
reader's scope (Claim.scope_clause); cached until a write touches a claim or a scheme.

- claimed: the amount of every claim submitted at least once (its included lines);
- approved: what decided claims (核准, 部分核准) approved — what was written against the budget;
- returned: the amount of lines returned (waiting for correction, or refused in a 部分核准);
- budget: the scheme-year's latest published version's budget (a central scheme's is national).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import case, func, select

from core.extensions import db
from core.web.workqueue import cached_value, scope_key
from models.addiction.claim import DECIDED, Claim, ClaimStatus
from models.addiction.scheme import SchemeStatus, SubsidyScheme

#: The tables the report reads: its cache is dropped by any write to them.
TABLES = ("claim", "claim_line", "subsidy_scheme")


@dataclass(frozen=True)
class SchemeRow:
    code: str
    name: str
    central: bool
    budget: int
    claims: int
    claimed: int
    approved: int
    returned: int
    waiting: int

    @property
    def remaining(self) -> int:
        return self.budget - self.approved

    @property
    def share(self) -> float:
        """Approved against budget (the chart's bar)."""
        return self.approved / self.budget if self.budget else 0.0

    @property
    def claimed_share(self) -> float:
        return self.claimed / self.budget if self.budget else 0.0

    def as_json(self) -> dict:
        return {**asdict(self), "remaining": self.remaining}


def compute(year: int, scope) -> list[SchemeRow]:
    """One row per scheme of the year with a claim in the reader's scope (or published)."""
    submitted = Claim.status != ClaimStatus.DRAFT.value
    stmt = (
        select(Claim.scheme_code, func.count(Claim.id),
               func.coalesce(func.sum(case((submitted, Claim.claimed_amount), else_=0)), 0),
               func.coalesce(func.sum(case((Claim.status.in_(DECIDED), Claim.approved_amount), else_=0)), 0),
               func.coalesce(func.sum(Claim.returned_amount), 0),
               func.coalesce(func.sum(case((Claim.status.in_(("submitted", "resubmitted", "in_review")), 1),
                                           else_=0)), 0))
        .where(Claim.year == year, Claim.scope_clause(scope), submitted)
        .group_by(Claim.scheme_code)
    )  # fmt: skip
    figures = {row[0]: row[1:] for row in db.session.execute(stmt)}
    schemes = {}
    for scheme in db.session.scalars(
        select(SubsidyScheme).where(SubsidyScheme.year == year, SubsidyScheme.status == SchemeStatus.PUBLISHED.value,
                                    SubsidyScheme.scope_clause(scope))
        .order_by(SubsidyScheme.version)
    ):  # fmt: skip
        schemes[scheme.code] = scheme  # the latest version last
    rows = []
    for code in sorted(set(schemes) | set(figures), key=lambda c: (schemes[c].county_id is not None if c in schemes
                                                                    else True, c)):  # fmt: skip
        scheme = schemes.get(code)
        if scheme is None:
            continue
        if scope.national and scheme.county_id is not None:
            continue  # the Ministry's report is of the central schemes (local ones are the counties')
        count, claimed, approved, returned, waiting = figures.get(code, (0, 0, 0, 0, 0))
        rows.append(SchemeRow(code, scheme.name, scheme.county_id is None, scheme.budget, int(count), int(claimed),
                              int(approved), int(returned), int(waiting)))  # fmt: skip
    return rows


def subsidy_report(year: int, scope) -> list[SchemeRow]:
    """compute(), cached under the scope and the versions of the tables it reads."""
    return cached_value(f"claim-report:{year}:{scope_key(scope)}", TABLES, lambda: compute(year, scope))


def chart_svg(rows: list[SchemeRow], title: str) -> str:
    """Claimed (light) and approved (dark) against budget per scheme, as inline SVG (no network)."""
    from markupsafe import escape

    bar_x, bar_width, height = 230, 320, 34
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="claim-chart" role="img" width="640" '
             f'height="{len(rows) * height + 34}" aria-label="{escape(title)}"><title>{escape(title)}</title>']  # fmt: skip
    for n, row in enumerate(rows):
        y = n * height + 5
        claimed = min(int(row.claimed_share * bar_width), bar_width)
        approved = min(int(row.share * bar_width), bar_width)
        parts.append(f'<text x="0" y="{y + 17}" font-size="13">{escape(row.name[:16])}</text>')
        parts.append(f'<rect x="{bar_x}" y="{y}" width="{bar_width}" height="{height - 10}" fill="#eee"></rect>')
        parts.append(f'<rect class="claimed" x="{bar_x}" y="{y}" width="{claimed}" height="{height - 10}" '
                     f'fill="#9ecae1"></rect>')  # fmt: skip
        parts.append(f'<rect class="bar" data-scheme="{escape(row.code)}" x="{bar_x}" y="{y + 6}" width="{approved}" '
                     f'height="{height - 22}" fill="#3182bd"></rect>')  # fmt: skip
        parts.append(f'<text x="{bar_x + bar_width + 6}" y="{y + 17}" font-size="12">{row.share * 100:.1f}%</text>')
    axis_y = len(rows) * height + 8
    parts.append(f'<line x1="{bar_x}" y1="{axis_y}" x2="{bar_x + bar_width}" y2="{axis_y}" stroke="#999"></line>')
    for pct in (0, 50, 100):
        parts.append(f'<text x="{bar_x + pct * bar_width // 100 - 8}" y="{axis_y + 16}" font-size="11">{pct}%</text>')
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["SchemeRow", "TABLES", "chart_svg", "compute", "subsidy_report"]
