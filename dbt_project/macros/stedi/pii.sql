{#
    Personal data in the STEDI curation (issue 9). Names, e-mails, phone numbers and birth dates stay in
    the trusted zone; curated tables identify a customer only by `customer_key`, a salted hash of the
    e-mail. The salt is a secret, so it is never rendered into SQL (where it would land in dbt's target/,
    manifest and logs, and in the engine's query history): the SQL reads it at query time.
      DuckDB  from the file named by var pii_salt_file (set by orchestration.transform: a private
              temporary copy of Settings.pii_salt, or the lake's own <lake>/_secrets/pii_salt), else by
              the environment variable LAKEHOUSE_PII_SALT_FILE, default <lake_root()>/_secrets/pii_salt
      Athena  from the one-row Glue table var('pii_salt_table') (default <schema>_secrets.pii_salt, column
              `salt`), an S3 object only the pipeline may read
#}

{# The customer key of an e-mail expression: sha256 of salt || lower(e-mail), 64 lowercase hex digits. #}
{% macro customer_key(email) -%}
    {{ return(adapter.dispatch('sha256_hex', 'lakehouse')(pii_salt_sql() ~ ' || lower(' ~ email ~ ')')) }}
{%- endmacro %}

{% macro default__sha256_hex(text) -%}
    sha256({{ text }})
{%- endmacro %}

{% macro duckdb__sha256_hex(text) -%}
    sha256({{ text }})
{%- endmacro %}

{% macro athena__sha256_hex(text) -%}
    lower(to_hex(sha256(to_utf8({{ text }}))))
{%- endmacro %}


{# A scalar subquery that yields the salt when the query runs. #}
{% macro pii_salt_sql() -%}
    {{ return(adapter.dispatch('pii_salt_sql', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__pii_salt_sql() -%}
    {%- set table = var('pii_salt_table', target.schema ~ '_secrets.pii_salt') -%}
    (select max(salt) from {{ table }})
{%- endmacro %}

{% macro duckdb__pii_salt_sql() -%}
    {%- if not execute -%}
        {{ return("cast(null as varchar)") }}
    {%- endif -%}
    {%- set default_path = lake_root() ~ '/_secrets/pii_salt' -%}
    {%- set path = var('pii_salt_file', none) or env_var('LAKEHOUSE_PII_SALT_FILE', default_path) -%}
    {%- set literal = "'" ~ path | replace("'", "''") ~ "'" -%}
    {%- set trimmed = "trim(salt_file.content, ' ' || chr(9) || chr(10) || chr(13))" -%}
    {%- set how = "the curated STEDI models hash each customer's e-mail with a secret salt. `lakehouse transform` "
        ~ "and `lakehouse run` provide it from Settings.pii_salt (LAKEHOUSE_PII_SALT, or pii_salt in "
        ~ "lakehouse.toml; keep it out of the repository) or, on a local lake, from <lake>/_secrets/pii_salt, "
        ~ "which they create. Running dbt by hand: export LAKEHOUSE_PII_SALT_FILE=/path/to/a/file/with/the/salt" -%}
    {%- set found = run_query("select count(*) from glob(" ~ literal ~ ")").columns[0].values()[0] -%}
    {%- if found == 0 -%}
        {{ exceptions.raise_compiler_error("no PII salt: the salt file " ~ path ~ " does not exist; " ~ how) }}
    {%- endif -%}
    {%- set length_sql = "select length(" ~ trimmed ~ ") from read_text(" ~ literal ~ ") as salt_file" -%}
    {%- set length = run_query(length_sql).columns[0].values()[0] -%}
    {%- if length < 16 -%}
        {{ exceptions.raise_compiler_error(
            "the PII salt in " ~ path ~ " has " ~ length ~ " characters; use at least 16 (random). " ~ how
        ) }}
    {%- endif -%}
    (select {{ trimmed }} from read_text({{ literal }}) as salt_file)
{%- endmacro %}
