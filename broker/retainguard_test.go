package broker

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fieldbridge/gateway/config"
)

// Retained publishes (inline and from network clients) racing SUBSCRIBEs
// that collect retained messages: under -race this fails if mochi's
// retained index is written and read at once (see retainGuard).
func TestRetainedPublishesRacingSubscribes(t *testing.T) {
	b, _ := startBroker(t, config.Broker{AllowAnonymous: boolPtr(true), Listeners: []config.Listener{tcpListener("local")}})
	url := brokerURL(t, b, "tcp", "local")
	sub := mustConnect(t, clientOpts(url))
	pub := mustConnect(t, clientOpts(url))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.Publish(fmt.Sprintf("plant/inline/%d", i%20), []byte{byte(i)}, true, 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pub.Publish(fmt.Sprintf("plant/net/%d", i%20), 0, true, []byte{byte(i)}).WaitTimeout(wait)
		}
	}()
	for i := range 100 {
		filter := []string{"plant/#", "plant/+/+", "plant/inline/+"}[i%3]
		if tok := sub.Subscribe(filter, 0, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		if err := b.Subscribe(filter, 7, func(string, []byte, bool, string) {}); err != nil {
			t.Fatal(err)
		}
		if tok := sub.Unsubscribe(filter); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("unsubscribe: %v", tok.Error())
		}
		if err := b.Unsubscribe(filter, 7); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
