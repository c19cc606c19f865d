{#
    Nothing is lost: every row of `source` is in `model` (the rejected rows, each with a reason) or in
    `kept`, and in only one of them. Fails with the three counts when they do not add up.
#}
{% test every_row_accounted_for(model, source, kept) %}

with

counts as (

    select
        (select count(*) from {{ source }}) as source_rows,
        (select count(*) from {{ kept }}) as kept_rows,
        (select count(*) from {{ model }}) as rejected_rows

)

select *
from counts
where source_rows <> kept_rows + rejected_rows

{% endtest %}
