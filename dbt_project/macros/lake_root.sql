{#
    The lake's root folder or URI: var lake_root, which `lakehouse` passes from its Settings, else the
    environment variable LAKEHOUSE_LAKE for a plain `dbt` run by hand, else the repository's ./lake.
    (YAML files cannot call macros: the sources and profiles.yml spell the same expression out.)
#}
{% macro lake_root() -%}
    {{ return(var('lake_root', none) or env_var('LAKEHOUSE_LAKE', '../lake')) }}
{%- endmacro %}
