{#
    One row per (reading, metric with a value): the long form that the gold aggregates and anomaly
    detectors work on. `columns` are carried over from `relation`; adds `metric` and `metric_value`.
#}
{% macro metric_values(relation, columns) -%}
    {%- for metric in var('metrics') %}
    select
        {{ columns | join(',\n        ') }},
        cast('{{ metric }}' as varchar) as metric,
        {{ metric }} as metric_value
    from {{ relation }}
    where {{ metric }} is not null
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
