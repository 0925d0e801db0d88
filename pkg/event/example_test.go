package event_test

import (
	"fmt"

	"github.com/routemaster-drain/drain/pkg/event"
)

func ExampleParse() {
	body := []byte(`[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123},` +
		`{"topic":"riders","type":"update","url":"https://riders.example.com/api/riders/77","t":1559567869215.0}]`)
	events, err := event.Parse(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, g := range event.GroupByTopic(events) {
		fmt.Printf("%s: %s\n", g.Topic, g.JSON())
	}
	_, err = event.Parse([]byte(`[{"topic":"orders","type":"created","url":"https://o.test/1","t":1}]`))
	fmt.Println(err)
	// Output:
	// orders: [{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123}]
	// riders: [{"topic":"riders","type":"update","url":"https://riders.example.com/api/riders/77","t":1559567869215.0}]
	// event 0: type: must be one of create, update, delete, noop
}
