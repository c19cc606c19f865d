{#
    The consent policy of the STEDI curation, from var `consent_policy` (set from
    Settings.consent_policy by orchestration.transform):
      since_consent (default)  a customer's readings count from their research-consent time on
      any_time                 every reading of a customer who consented counts
    Anything else stops the build at compile time. Every table the policy shapes records it in a
    `consent_policy` column.
#}
{% macro consent_policy() -%}
    {%- set allowed = ['since_consent', 'any_time'] -%}
    {%- set policy = var('consent_policy', 'since_consent') -%}
    {%- if policy not in allowed -%}
        {{ exceptions.raise_compiler_error(
            "var consent_policy = '" ~ policy ~ "' is not one of: " ~ allowed | join(', ')
            ~ ". Set Settings.consent_policy (LAKEHOUSE_CONSENT_POLICY) or pass --vars "
            ~ "'{consent_policy: since_consent}' to dbt"
        ) }}
    {%- endif -%}
    {{ return(policy) }}
{%- endmacro %}


{# The policy as a column value. #}
{% macro consent_policy_column() -%}
    cast('{{ consent_policy() }}' as varchar) as consent_policy
{%- endmacro %}


{#
    Whether a reading taken at `reading_ms` may be used for a customer who consented at `consent_ms`
    (both epoch ms): since_consent keeps readings at or after the consent, any_time keeps all of them.
#}
{% macro reading_within_consent(reading_ms, consent_ms) -%}
    {%- if consent_policy() == 'since_consent' -%}
        {{ reading_ms }} >= {{ consent_ms }}
    {%- else -%}
        {{ consent_ms }} is not null
    {%- endif -%}
{%- endmacro %}
