# The planner cost of PostGIS's ST_Intersects(geometry, geometry): PostGIS declares 10000 (25 cost units per
# row, the price of 25 random page reads), so the planner took any second index that removed a few rows
# before the exact test: a 98k-entry `acquired` bitmap AND-ed into a 900-row GiST scan (bbox + date search,
# 18 ms instead of 10), a 550k-entry tag bitmap into a 15k-row one (150 ms instead of 60). The exact test on
# a prepared geometry costs microseconds; 100 keeps it after the plain comparisons in a filter and lets the
# GiST scan stand alone (bench/README.md, "EXPLAIN findings"). Only where our role may alter the function
# (its owner or a superuser); elsewhere the migration notes it and changes nothing. `ALTER EXTENSION postgis
# UPDATE` restores PostGIS's cost: run `manage.py migrate imagery 0003 && manage.py migrate` after one.

from django.db import migrations

FUNCTIONS = ("st_intersects(geometry, geometry)", "_st_intersects(geometry, geometry)")


def alter_cost(cost: int) -> str:
    statements = " ".join(f"ALTER FUNCTION {function} COST {cost};" for function in FUNCTIONS)
    return f"""
DO $$
BEGIN
    {statements}
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'tessera: cannot change the planner cost of ST_Intersects (not the owner); searches keep PostGIS''s';
END $$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('imagery', '0003_drop_tags_gin'),
    ]

    operations = [
        migrations.RunSQL(alter_cost(100), reverse_sql=alter_cost(10000)),
    ]
