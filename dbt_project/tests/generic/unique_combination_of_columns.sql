{#
    Primary-key test for a compound key: no combination of the columns appears twice.
    (Our own version of dbt_utils' test: `dbt deps` cannot reach the package hub from here.)
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(',\n    ') }},
    count(*) as copies
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
