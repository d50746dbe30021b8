"""Risk-cell readers that plan one partition, and cell sets without row-by-row key checks.

``risk_run_res(run_id)`` (a run's H3 resolution) and ``risk_run_holds(run_id, h3)`` read
only the run's partition of ``risk_cells``: a statement naming the table with a correlated
run id plans every partition, and a province keeps thousands (one per run). The foreign keys
of ``risk_set_cells`` and ``risk_set_parents`` go: checking them row by row was most of the
time of writing a province's 2.3 M cells; prune deletes an unused set's rows itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The functions as of this revision (frozen): a run's H3 resolution, and whether it holds
#: a cell. Their dynamic statements are planned with the run id known, so only the run's
#: partition is read.
RUN_FUNCTIONS = (
    """
CREATE FUNCTION risk_run_res(p_run bigint) RETURNS smallint
LANGUAGE plpgsql STABLE AS $$
DECLARE v_res smallint;
BEGIN
    SELECT s.res INTO v_res FROM risk_runs AS r JOIN risk_cell_sets AS s ON s.id = r.cell_set_id
    WHERE r.id = p_run;
    IF v_res IS NULL THEN
        EXECUTE 'SELECT max(res) FROM risk_cells WHERE run_id = $1' INTO v_res USING p_run;
    END IF;
    RETURN v_res;
END $$
    """,
    """
CREATE FUNCTION risk_run_holds(p_run bigint, p_h3 bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE v_set bigint;
DECLARE v_holds boolean;
BEGIN
    SELECT r.cell_set_id INTO v_set FROM risk_runs AS r WHERE r.id = p_run;
    IF v_set IS NOT NULL THEN
        RETURN EXISTS (SELECT 1 FROM risk_set_cells AS s WHERE s.set_id = v_set AND s.h3 = p_h3);
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM risk_cells WHERE run_id = $1 AND h3 = $2)'
        INTO v_holds USING p_run, p_h3;
    RETURN v_holds;
END $$
    """,
)


def upgrade() -> None:
    for statement in RUN_FUNCTIONS:
        op.execute(statement)
    op.execute("ALTER TABLE risk_set_cells DROP CONSTRAINT fk_risk_set_cells_set_id")
    op.execute("ALTER TABLE risk_set_parents DROP CONSTRAINT fk_risk_set_parents_set_id")


def downgrade() -> None:
    for table in ("risk_set_cells", "risk_set_parents"):
        op.execute(f"DELETE FROM {table} WHERE set_id NOT IN (SELECT id FROM risk_cell_sets)")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_set_id FOREIGN KEY (set_id) "
            "REFERENCES risk_cell_sets (id) ON DELETE CASCADE"
        )
    op.execute("DROP FUNCTION risk_run_holds(bigint, bigint)")
    op.execute("DROP FUNCTION risk_run_res(bigint)")
