{#
    Backfill (`lakehouse backfill --from D1 --to D2`): vars backfill_from and backfill_to, dates
    'YYYY-MM-DD', both or neither. When they are set, an incremental run of silver_classified_readings
    and of the incremental gold models rebuilds every unit of those event dates (inclusive) from its
    inputs, whatever the lookback and whatever changed, and leaves every unit of other dates as it is.
    Strategy replace_units also clears the whole range first, so a unit whose input rows are gone does not
    survive (on Athena, insert_overwrite rewrites the range's date partitions).

    Returns none when the vars are unset, else {'from': 'YYYY-MM-DD', 'to': 'YYYY-MM-DD'}.
#}
{% macro backfill_range() -%}
    {%- set start = var('backfill_from', none) -%}
    {%- set end = var('backfill_to', none) -%}
    {%- if start is none and end is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if start is none or end is none -%}
        {{ exceptions.raise_compiler_error(
            "backfill: set both vars backfill_from and backfill_to ('YYYY-MM-DD'), or neither; got "
            ~ "backfill_from=" ~ start ~ ", backfill_to=" ~ end) }}
    {%- endif -%}
    {%- set start = start | string -%}
    {%- set end = end | string -%}
    {%- for value in [start, end] -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
            {{ exceptions.raise_compiler_error(
                "backfill: '" ~ value ~ "' is not a date; write vars backfill_from and backfill_to as YYYY-MM-DD") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if start > end -%}
        {{ exceptions.raise_compiler_error(
            "backfill: backfill_from " ~ start ~ " is after backfill_to " ~ end ~ "; swap them") }}
    {%- endif -%}
    {{ return({'from': start, 'to': end}) }}
{%- endmacro %}


{#
    SQL condition: the date `column` lies in the backfill range, widened by `days_before` and
    `days_after` (context a unit needs from its neighbours, e.g. the day before for gaps and lags).
#}
{% macro in_backfill_range(column, backfill, days_before=0, days_after=0) -%}
    {%- set start = "cast('" ~ backfill['from'] ~ "' as date)" -%}
    {%- set end = "cast('" ~ backfill['to'] ~ "' as date)" -%}
    {%- if days_before -%}
        {%- set start = "cast(" ~ dbt.dateadd('day', -1 * days_before, start) ~ " as date)" -%}
    {%- endif -%}
    {%- if days_after -%}
        {%- set end = "cast(" ~ dbt.dateadd('day', days_after, end) ~ " as date)" -%}
    {%- endif -%}
    {{ column }} between {{ start }} and {{ end }}
{%- endmacro %}
