{#
    Where a model lands. DuckDB: the folder's custom schema as is (staging, silver, gold, seeds), so
    analysts query `silver.silver_readings`. Athena: every schema is a Glue database, shared by the whole
    AWS account, so the target schema prefixes it (`lakehouse_silver`, `lakehouse_gold`, ...).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ return(adapter.dispatch('lakehouse_schema_name', 'lakehouse')(custom_schema_name, node)) }}
{%- endmacro %}

{% macro default__lakehouse_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{% macro athena__lakehouse_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ target.schema | trim }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
