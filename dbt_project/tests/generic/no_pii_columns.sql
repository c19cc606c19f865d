{#
    Privacy test for the curated zone: fails with one row per finding when a model has a column whose name
    matches a personal-data pattern (var `pii_column_patterns`, the one list of them) or a text column
    holding values that look like e-mail addresses.
#}
{% test no_pii_columns(model) %}

{%- set patterns = var('pii_column_patterns') -%}
{%- set columns = adapter.get_columns_in_relation(model) if execute else [] -%}

{%- for column in columns %}
    {%- for pattern in patterns if pattern in column.name | lower %}
select
    '{{ column.name }}' as column_name,
    'column name contains "{{ pattern }}"' as finding,
    cast(null as bigint) as matching_rows
union all
    {%- endfor %}
    {%- if column.is_string() %}
select
    '{{ column.name }}' as column_name,
    'values look like e-mail addresses' as finding,
    count(*) as matching_rows
from {{ model }}
where {{ adapter.quote(column.name) }} like '%_@_%._%'
having count(*) > 0
union all
    {%- endif %}
{%- endfor %}
select
    cast(null as varchar) as column_name,
    cast(null as varchar) as finding,
    cast(null as bigint) as matching_rows
where false

{% endtest %}
